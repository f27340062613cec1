from django import template

from ambula.accounts.policy import Capability
from ambula.accounts.policy import can as policy_can

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context, capability: str) -> bool:
    """{% can "accounts.manage" as allowed %}: ask the permission policy from a template."""
    return policy_can(context["request"].user, Capability(capability))
