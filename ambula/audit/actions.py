"""Every audit action, in one documented list. Namespaced, in the past tense, each of a kind.

The kind is the ASTM E2147 / ONC vocabulary reports filter on (login, read, update, ...);
the action says exactly what happened.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    kind: str
    description: str


ACTIONS: dict[str, Action] = {
    # Authentication
    "auth.signed_in": Action("login", "A user signed in (password and, where required, code)."),
    "auth.sign_in_failed": Action(
        "login_failed", "A sign-in failed: wrong password, or refused while throttled or locked."
    ),
    "auth.sign_in_locked": Action(
        "login_failed", "Too many failed sign-ins locked a username, or an address, for a while."
    ),
    "auth.reauthentication_failed": Action(
        "login_failed", "A signed-in user gave a wrong current password."
    ),
    "auth.mfa_failed": Action("mfa_failed", "A wrong two-step code was entered at sign-in."),
    "auth.signed_out": Action("logout", "A user signed out."),
    "auth.session_timed_out": Action(
        "logout", "A session ended after inactivity or at its maximum length."
    ),
    "auth.password_changed": Action(
        "update", "A user changed their password; their other sessions ended."
    ),
    "auth.password_set": Action("update", "A user set their password from a one-time link."),
    "auth.mfa_enrolled": Action("update", "A user enrolled an authenticator app."),
    "auth.mfa_recovery_code_used": Action("login", "A user signed in with a recovery code."),
    "auth.mfa_recovery_codes_regenerated": Action(
        "update", "A user replaced their recovery codes."
    ),
    "auth.access_denied": Action(
        "access_denied", "A user asked for something their role does not allow."
    ),
    # Accounts and privileges
    "accounts.user_invited": Action("privilege_change", "An administrator invited a new user."),
    "accounts.user_created": Action("privilege_change", "A user account was created."),
    "accounts.roles_changed": Action("privilege_change", "A user's roles were changed."),
    "accounts.user_deactivated": Action(
        "privilege_change", "A user was deactivated and their sessions ended."
    ),
    "accounts.user_reactivated": Action("privilege_change", "A user was reactivated."),
    "accounts.mfa_reset": Action(
        "privilege_change", "An administrator removed a user's authenticator and recovery codes."
    ),
    "accounts.user_unlocked": Action("privilege_change", "An administrator lifted a sign-in lock."),
    "accounts.sessions_ended": Action("logout", "A user's sessions were ended."),
    # Practice
    "practice.settings_changed": Action(
        "configuration", "The practice's security settings were changed."
    ),
    # Patients
    "patients.registered": Action("create", "A patient was registered."),
    "patients.searched": Action("search", "Someone searched for patients (the query is kept)."),
    "patients.chart_viewed": Action("read", "Someone opened a patient's chart."),
    "patients.allergies_viewed": Action("read", "Someone saw a patient's allergy list."),
    "patients.allergy_added": Action("create", "An allergy was added to a patient's list."),
    "patients.allergy_updated": Action(
        "update", "An allergy was resolved or marked entered in error."
    ),
    "patients.no_known_allergies_recorded": Action(
        "update", "A patient was recorded as having no known allergies."
    ),
    # Patients: demographics and contacts
    "patients.demographics_opened": Action(
        "read", "Someone opened a patient's details to edit them."
    ),
    "patients.demographics_updated": Action(
        "update", "A patient's details changed (old and new values; for the SSN only that it did)."
    ),
    "patients.restriction_changed": Action(
        "update", "A patient's record was marked restricted, or no longer restricted."
    ),
    "patients.contact_added": Action(
        "create", "An emergency contact or the guarantor was added to a patient's record."
    ),
    "patients.contact_removed": Action(
        "delete", "An emergency contact or the guarantor was removed (the event keeps it)."
    ),
    # Patients: payer directory and coverage
    "patients.payer_created": Action("create", "A payer was added to the payer directory."),
    "patients.payer_updated": Action("update", "A payer's name, payer ID or address changed."),
    "patients.payer_deactivated": Action(
        "update", "A payer was taken out of use for new coverage."
    ),
    "patients.payer_reactivated": Action("update", "A deactivated payer was put back in use."),
    "patients.coverage_viewed": Action("read", "Someone saw a patient's insurance coverage."),
    "patients.coverage_added": Action("create", "An insurance plan was added for a patient."),
    "patients.coverage_updated": Action("update", "A patient's insurance plan was corrected."),
    "patients.coverage_ended": Action("update", "A patient's insurance plan was ended."),
    "patients.coverage_struck": Action(
        "update", "A patient's insurance plan was marked entered in error."
    ),
    # Patients: merge and emergency access
    "patients.merged": Action(
        "update", "A duplicate record was merged into the surviving one (logged on both)."
    ),
    "patients.restricted_record_refused": Action(
        "read", "Someone without a care relationship tried to open a restricted record."
    ),
    "patients.emergency_access_granted": Action(
        "emergency_access", "Someone opened a restricted record in an emergency, with a reason."
    ),
    "patients.emergency_access_reviewed": Action(
        "update", "The privacy officer reviewed a use of emergency access."
    ),
    "patients.emergency_access_queue_viewed": Action(
        "read", "Someone opened the emergency access review queue."
    ),
    # Patients: medication list
    "patients.medications_viewed": Action("read", "Someone saw a patient's medication list."),
    "patients.medication_added": Action("create", "A medication was added to a patient's list."),
    "patients.medication_stopped": Action("update", "A medication on the list was stopped."),
    "patients.medication_struck": Action(
        "update", "A medication on the list was marked entered in error."
    ),
    # Patients: history
    "patients.history_viewed": Action(
        "read", "Someone saw a patient's medical, surgical, family and social history."
    ),
    "patients.history_added": Action(
        "create", "A line of past medical, surgical or family history was added."
    ),
    "patients.history_struck": Action("update", "A line of history was marked entered in error."),
    "patients.social_history_recorded": Action(
        "create", "A patient's social history (tobacco, alcohol, occupation) was first recorded."
    ),
    "patients.social_history_updated": Action(
        "update", "A patient's social history changed (old and new values are kept)."
    ),
    # Patients: problem list
    "patients.problems_viewed": Action("read", "Someone saw a patient's problem list."),
    "patients.problem_added": Action("create", "A coded problem was added to a patient's list."),
    "patients.problem_resolved": Action("update", "A problem on the list was marked resolved."),
    "patients.problem_struck": Action(
        "update", "A problem on the list was marked entered in error."
    ),
    "patients.problem_note_updated": Action("update", "The note on a listed problem changed."),
    # Patients: documents (the file's bytes are never in an event)
    "patients.documents_viewed": Action(
        "read", "Someone saw the list of a patient's documents (the categories they may see)."
    ),
    "patients.document_uploaded": Action(
        "create", "A document (PDF or image) was uploaded to a patient's record, encrypted."
    ),
    "patients.document_downloaded": Action("read", "Someone downloaded a patient's document."),
    "patients.document_previewed": Action(
        "read", "Someone opened a patient's document in the browser."
    ),
    "patients.document_struck": Action("update", "A document was marked entered in error."),
    # Scheduling
    "scheduling.appointment_booked": Action(
        "create", "An appointment was booked (overbookings carry their reason)."
    ),
    "scheduling.appointment_rescheduled": Action(
        "update", "An appointment was moved: a new one was booked and the old one cancelled."
    ),
    "scheduling.appointment_cancelled": Action(
        "update", "An appointment was cancelled, with a reason; its time and rooms were freed."
    ),
    "scheduling.appointment_no_show": Action("update", "A patient did not come to an appointment."),
    "scheduling.patient_checked_in": Action("update", "A patient arrived for an appointment."),
    "scheduling.patient_roomed": Action("update", "A patient was taken to an exam room."),
    "scheduling.appointment_completed": Action("update", "An appointment was completed."),
    "scheduling.day_board_viewed": Action(
        "read", "Someone saw a location's day board (each refresh of it is one event)."
    ),
    "scheduling.day_schedule_printed": Action(
        "read", "Someone opened the printable day schedule of a location."
    ),
    "scheduling.provider_week_viewed": Action("read", "Someone saw a provider's week."),
    "scheduling.booking_opened": Action(
        "read", "Someone opened the booking or rescheduling page for a patient."
    ),
    "scheduling.downtime_kit_exported": Action(
        "export", "An encrypted downtime kit (the coming days' schedule and summaries) was made."
    ),
    "scheduling.downtime_kit_patient_included": Action(
        "read", "A patient's summary went into a downtime kit (one event per patient)."
    ),
    # Code sets (public reference data, no PHI)
    "terminology.code_set_loaded": Action(
        "configuration", "A code set release (ICD-10-CM) replaced the loaded one."
    ),
    "scheduling.waitlist_added": Action("create", "A patient was put on the waitlist."),
    "scheduling.waitlist_withdrawn": Action("update", "A patient left the waitlist."),
    "scheduling.waitlist_claimed": Action(
        "update", "A freed slot was booked for a waitlisted patient."
    ),
    "scheduling.waitlist_viewed": Action(
        "read", "Someone saw waitlist entries (the queue or a freed slot's matches), per patient."
    ),
    "scheduling.waitlist_form_opened": Action(
        "read", "Someone opened the form putting a patient on the waitlist."
    ),
    # Scheduling set-up
    "scheduling.provider_created": Action("create", "A staff user was made a bookable provider."),
    "scheduling.location_created": Action("create", "A location was added."),
    "scheduling.location_updated": Action(
        "update", "A location's name, address, phone or status was changed."
    ),
    "scheduling.location_hours_set": Action("update", "A location's opening hours were set."),
    "scheduling.provider_updated": Action(
        "update", "A provider's profile was changed, or they were taken off or put back on."
    ),
    "scheduling.resource_created": Action("create", "A room or piece of equipment was added."),
    "scheduling.resource_updated": Action(
        "update", "A room or piece of equipment was renamed, taken out of use or put back."
    ),
    "scheduling.appointment_type_created": Action("create", "An appointment type was added."),
    "scheduling.appointment_type_updated": Action(
        "update", "An appointment type was changed, retired or brought back."
    ),
    "scheduling.block_created": Action("create", "A weekly schedule block was added."),
    "scheduling.block_updated": Action("update", "A weekly schedule block was changed."),
    "scheduling.block_deleted": Action("delete", "A weekly schedule block was removed."),
    "scheduling.exception_created": Action(
        "create", "Time off, a holiday or a closure was blocked out."
    ),
    "scheduling.exception_deleted": Action(
        "delete", "Upcoming time off, a holiday or a closure was removed."
    ),
    "scheduling.exception_ended": Action(
        "update", "Running time off, a holiday or a closure was ended early; its past part stays."
    ),
    "scheduling.conflicts_viewed": Action(
        "read",
        "Someone was shown the booked appointments a schedule change would affect.",
    ),
    # Encryption keys
    "encryption.key_rotated": Action(
        "configuration", "A new encryption key was added and made active (`ambula keys rotate`)."
    ),
    "encryption.key_retired": Action(
        "configuration", "An encryption key no value used any more was removed."
    ),
    # Backups
    "backup.created": Action("export", "An encrypted backup of the whole installation was made."),
    "backup.restored": Action("configuration", "The installation was restored from a backup."),
    # The audit trail itself
    "audit.searched": Action("search", "Someone searched the audit trail."),
    "audit.exported": Action("export", "Someone exported audit events as CSV."),
    "audit.event_viewed": Action("read", "Someone opened one audit event and its details."),
    "audit.disclosures_viewed": Action(
        "read", "Someone viewed a patient's accounting of disclosures."
    ),
    "audit.anchored": Action("configuration", "The chain head was written to the anchor file."),
    # API clients and tokens (SMART on FHIR)
    "smart.client_registered": Action("configuration", "An API client was registered."),
    "smart.client_revoked": Action(
        "configuration", "An API client was revoked, and every token it held."
    ),
    "smart.token_issued": Action("login", "An API client was issued an access token."),
    "smart.token_refused": Action("login_failed", "An API client's token request was refused."),
    "smart.token_refreshed": Action("login", "An API client refreshed its access token."),
    "smart.token_revoked": Action("logout", "An API token was revoked."),
    "smart.access_approved": Action("privilege_change", "A user approved an app's access."),
    "smart.access_denied": Action("access_denied", "A user refused an app's access."),
    # The FHIR API: one event per interaction, naming the client and the user behind it
    "fhir.read": Action("read", "An API client read a resource (read or vread)."),
    "fhir.history_read": Action("read", "An API client read a resource's history."),
    "fhir.searched": Action("search", "An API client searched resources."),
    "fhir.everything_read": Action("read", "An API client read a patient's whole record."),
    "fhir.created": Action("create", "An API client created a resource."),
    "fhir.updated": Action("update", "An API client updated a resource."),
    "fhir.deleted": Action("delete", "An API client deleted a resource."),
    "fhir.bundle_processed": Action("update", "An API client sent a batch or transaction."),
    "fhir.refused": Action("access_denied", "An API request was refused (scope or role)."),
}

KINDS = sorted({action.kind for action in ACTIONS.values()})
