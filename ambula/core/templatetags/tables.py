from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, column: str, label: str):
    """A column heading that sorts the table by it, and says how it is sorted now."""
    current = context.get("sort", "")
    ascending = current == column
    descending = current == f"-{column}"
    next_sort = f"-{column}" if ascending else column
    query = context.get("query_without_sort", "")
    href = f"?{query}&sort={next_sort}" if query else f"?sort={next_sort}"
    state = "ascending" if ascending else "descending" if descending else "none"
    arrow = "↑" if ascending else "↓" if descending else ""
    return format_html(
        '<th scope="col" aria-sort="{}"><a class="sort-link" href="{}">{} '
        '<span aria-hidden="true">{}</span></a></th>',
        state,
        href,
        label,
        arrow,
    )
