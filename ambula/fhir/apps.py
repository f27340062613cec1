from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "ambula.fhir"
    label = "fhir"
    verbose_name = "FHIR API"

    def ready(self) -> None:
        # Each resource module registers its mapper; versions follow the mapped models' saves.
        from ambula.fhir import resources, versions

        resources.load_all()
        versions.connect_signals()
