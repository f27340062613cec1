"""Forms of the payer directory and the chart's coverage section: they shape input only;
the services in ambula/patients/coverage.py decide what is allowed."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ambula.patients.coverage import SUBSCRIBER_FIELDS, active_payers, insurance_cards
from ambula.patients.forms import US_PHONE
from ambula.patients.models import Coverage, Document, Patient, Payer


class DateInput(forms.DateInput):
    """The browser's date picker; it sends ISO dates whatever the user's locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class PayerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    payer_id = forms.RegexField(
        label=_("Payer ID"),
        regex=r"^\s*[A-Za-z0-9]{2,20}\s*$",
        max_length=40,
        help_text=_("Letters and digits, as claims are sent to it (e.g. 60054)."),
        error_messages={"invalid": _("Use 2 to 20 letters and digits, like 60054.")},
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    address_line = forms.CharField(label=_("Claims address"), max_length=200, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    state = forms.RegexField(
        label=_("State"),
        regex=r"^\s*[A-Za-z]{2}\s*$",
        max_length=2,
        required=False,
        error_messages={"invalid": _("Two letters, like IL.")},
    )
    postal_code = forms.RegexField(
        label=_("ZIP code"),
        regex=r"^\s*\d{5}(-\d{4})?\s*$",
        max_length=10,
        required=False,
        error_messages={"invalid": _("Enter a ZIP code like 62701.")},
    )
    phone = forms.CharField(label=_("Phone"), max_length=20, required=False)

    def clean_phone(self):
        phone = self.cleaned_data["phone"].strip()
        if not phone:
            return ""
        match = US_PHONE.match(phone)
        if not match:
            raise forms.ValidationError(_("Enter a 10-digit phone number, like (217) 555-0140."))
        return "({}) {}-{}".format(*match.groups())

    @classmethod
    def for_payer(cls, payer: Payer, data=None) -> "PayerForm":
        initial = {name: getattr(payer, name) for name in cls.base_fields}
        return cls(data, initial=initial)


class PayerSearchForm(forms.Form):
    q = forms.CharField(label=_("Search payers"), max_length=100, required=False)


class CardChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, document) -> str:
        return f"{document.title} ({document.document_date:%Y-%m-%d})"


class CoverageForm(forms.Form):
    """One insurance plan. The subscriber fields matter only when the patient is not the
    subscriber; the stylesheet hides them while "Self" is chosen, and they work without it."""

    payer = forms.ModelChoiceField(
        label=_("Payer"), queryset=Payer.objects.none(), empty_label=_("Choose a payer…")
    )
    priority = forms.TypedChoiceField(
        label=_("Priority"),
        choices=Coverage.Priority.choices,
        coerce=int,
        initial=Coverage.Priority.PRIMARY,
    )
    member_id = forms.CharField(
        label=_("Member ID"),
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    group_number = forms.CharField(label=_("Group number"), max_length=50, required=False)
    plan_name = forms.CharField(label=_("Plan"), max_length=200, required=False)
    relationship = forms.ChoiceField(
        label=_("Patient is the subscriber's"),
        choices=Coverage.Relationship.choices,
        initial=Coverage.Relationship.SELF,
        help_text=_(
            "Self when the plan is in the patient's own name; otherwise enter the subscriber "
            "as printed on the card."
        ),
    )
    subscriber_given_name = forms.CharField(
        label=_("Subscriber first name"), max_length=100, required=False
    )
    subscriber_family_name = forms.CharField(
        label=_("Subscriber last name"), max_length=100, required=False
    )
    subscriber_date_of_birth = forms.DateField(
        label=_("Subscriber date of birth"), required=False, widget=DateInput()
    )
    subscriber_sex = forms.ChoiceField(
        label=_("Subscriber sex"),
        choices=[("", "—"), *Patient.Sex.choices],
        required=False,
    )
    effective_from = forms.DateField(label=_("Effective from"), required=False, widget=DateInput())
    effective_to = forms.DateField(label=_("Effective to"), required=False, widget=DateInput())
    copay = forms.DecimalField(
        label=_("Copay ($)"),
        required=False,
        min_value=0,
        max_digits=8,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
    )
    card_front = CardChoiceField(
        label=_("Card, front"),
        queryset=Document.objects.none(),
        required=False,
        empty_label=_("No scan"),
    )
    card_back = CardChoiceField(
        label=_("Card, back"),
        queryset=Document.objects.none(),
        required=False,
        empty_label=_("No scan"),
    )

    def __init__(self, *args, patient: Patient, coverage: Coverage | None = None, **kwargs):
        kwargs.setdefault("auto_id", "coverage-%s")
        if coverage is not None:
            kwargs.setdefault(
                "initial",
                {name: getattr(coverage, name) for name in self.base_fields}
                | {
                    "payer": coverage.payer_id,
                    "card_front": coverage.card_front_id,
                    "card_back": coverage.card_back_id,
                },
            )
        super().__init__(*args, **kwargs)
        payers = active_payers()
        if coverage is not None:
            # A plan with a payer since taken out of use may keep it.
            payers = (payers | Payer.objects.filter(pk=coverage.payer_id)).order_by("name")
        self.fields["payer"].queryset = payers
        cards = insurance_cards(patient)
        self.fields["card_front"].queryset = cards
        self.fields["card_back"].queryset = cards
        self.has_cards = cards.exists()

    def clean_member_id(self):
        return self.cleaned_data["member_id"].strip()

    def clean(self):
        # Also checked by the service; asked here too so every missing field shows at once.
        cleaned = super().clean()
        if cleaned.get("relationship", Coverage.Relationship.SELF) != Coverage.Relationship.SELF:
            for name in SUBSCRIBER_FIELDS:
                if not cleaned.get(name) and name not in self.errors:
                    self.add_error(name, _("Required for this relationship."))
        return cleaned


class CoverageEndForm(forms.Form):
    effective_to = forms.DateField(
        label=_("Last day covered"),
        required=False,
        widget=DateInput(),
        help_text=_("Leave empty to end it today."),
    )
