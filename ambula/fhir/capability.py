"""The CapabilityStatement, built from the registered mappers so it lists exactly what is
implemented: each type's interactions, search parameters, includes and profiles."""

from __future__ import annotations

from django.urls import reverse

from ambula import __version__
from ambula.fhir.registry import all_mappers
from ambula.fhir.search import COMMON_PARAMS

# When this statement last changed: update it with the API.
STATEMENT_DATE = "2026-11-28"
OAUTH_URIS = {
    "authorize": "authorize",
    "token": "token",
    "revoke": "revoke-token",
    "introspect": "introspect",
}
SMART_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def statement(base: str) -> dict:
    root = base.removesuffix("/fhir")
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "Ambula",
        "kind": "instance",
        "software": {"name": "Ambula", "version": __version__},
        "implementation": {"description": "Ambula FHIR R4 API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": [],
        "implementationGuide": ["http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth 2.0 with SMART App Launch v2: authorization code with "
                    "PKCE for apps, SMART Backend Services (private_key_jwt) and client secrets "
                    "for integrations. Discovery: "
                    f"{root}{reverse('smart:smart_configuration')}",
                    "extension": [
                        {
                            "url": SMART_EXTENSION,
                            "extension": [
                                {"url": name, "valueUri": root + reverse(f"oauth2_provider:{view}")}
                                for name, view in OAUTH_URIS.items()
                            ],
                        }
                    ],
                },
                "resource": [_resource(mapper) for mapper in all_mappers()],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
                "operation": [
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }
                ],
            }
        ],
    }


def _resource(mapper) -> dict:
    interactions = mapper.interactions()
    common = {name: COMMON_PARAMS[name] for name in mapper.common_params}
    params = {**common, **mapper.search_params}
    found = {
        "type": mapper.resource_type,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update"
        if "update" in interactions
        else ("versioned" if mapper.versioned else "no-version"),
        "readHistory": mapper.versioned,
        "updateCreate": False,
        "conditionalCreate": "create" in interactions,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {
                "name": name,
                "type": param.type,
                **({"documentation": param.documentation} if param.documentation else {}),
            }
            for name, param in params.items()
        ],
    }
    if mapper.profiles:
        found["supportedProfile"] = list(mapper.profiles)
    if mapper.includes:
        found["searchInclude"] = [f"{mapper.resource_type}:{name}" for name in mapper.includes]
    if mapper.revincludes:
        found["searchRevInclude"] = list(mapper.revincludes)
    if mapper.resource_type == "Patient":
        found["operation"] = [
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            }
        ]
    return found
