"""The chart's document upload form: it shapes input; `document_upload` checks the file."""

from django import forms
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.patients.documents import (
    ACCEPT,
    Category,
    categories_editable_by,
    max_document_bytes,
    size_in_words,
)


class DateInput(forms.DateInput):
    """The browser's date picker; it sends ISO dates whatever the user's locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class DocumentUploadForm(forms.Form):
    """A file, its category, and optionally a title and the date on the document.

    Offers only the categories the user may file: the front desk does not see "Lab result".
    """

    file = forms.FileField(
        label=_("File"),
        widget=forms.FileInput(attrs={"accept": ACCEPT}),
        error_messages={
            "required": _("Choose a file to upload."),
            "empty": _("The file is empty."),
        },
    )
    category = forms.ChoiceField(
        label=_("Category"),
        error_messages={
            "required": _("Choose a category."),
            "invalid_choice": _("Choose one of the categories listed."),
        },
    )
    title = forms.CharField(
        label=_("Title"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. Cardiology consult letter")}),
        help_text=_("Leave blank to use the category and date."),
    )
    document_date = forms.DateField(
        label=_("Date on the document"), required=False, widget=DateInput()
    )

    def __init__(self, *args, actor: User, **kwargs):
        kwargs.setdefault("auto_id", "document-%s")
        super().__init__(*args, **kwargs)
        self.allowed_categories = categories_editable_by(actor)
        self.fields["category"].choices = [("", _("Choose a category…"))] + [
            (value, label) for value, label in Category.choices if value in self.allowed_categories
        ]
        self.fields["file"].help_text = _("PDF, PNG, JPEG or WebP, up to %(limit)s.") % {
            "limit": size_in_words(max_document_bytes())
        }
        today = localdate()
        self.fields["document_date"].initial = today
        self.fields["document_date"].widget.attrs["max"] = today.isoformat()

    @property
    def file_to_choose_again(self) -> str:
        """The name of a sound file sent with a form that failed elsewhere.

        Browsers never refill a file input, so the user must pick it again; say which.
        """
        if not self.is_bound or not self.errors or "file" in self.errors:
            return ""
        uploaded = self.files.get("file")
        return uploaded.name if uploaded else ""
