"""The portal in a real browser (Debian's Chromium, headless, through Playwright), against a real
server started by `tests/api/portal.rs`. An owner, front desk, a clinician and a patient (in two
browser contexts) work through one practice day:

- the owner enrolls TOTP, signs out and back in with a recovery code (a wrong code first),
  invites the clinician by name and credentials, names front desk, verifies the audit trail and
  looks at break-glass grants;
- the clinician accepts the invitation, enrolls TOTP and appears by name ever after;
- front desk enrolls TOTP, creates a patient (the missing name is named at the field), invites
  them, puts the clinician on the care team, reloads (still signed in) and gives a PHQ-9 for
  the clinician; the clinician gives a GAD-7;
- the patient accepts the invitation (a weak password refused with the server's reason), signs
  in, starts the PHQ-9 in one context, resumes the draft in another, answers item 9 above zero
  and sees crisis resources at once, submits;
- the clinician's page shows the urgent alert and the new score without a reload;
- front desk books a slot whose answer is lost on the way back (the portal retries with its
  Idempotency-Key and gets the first answer: booked once), the clinician's week and the
  patient's home update live, by name; then a conflicting one (the 409 is explained at the field), moves it (a bad length refused at
  the field), sends a reminder now and sees its state, and cancels it;
- sign-out leaves no PHI in the page, the browser's storage, history or HTTP cache.

Every screen is scanned with axe-core (no serious or critical violation) and photographed at
360 px and 1280 px into $SCREENSHOTS. Any failure exits non-zero with the reason.

Environment: CONFIDANT_URL, OWNER_EMAIL, DESK_EMAIL, CLINICIAN_EMAIL, STAFF_PASSWORD,
SCREENSHOTS.
"""

import base64
import datetime
import hashlib
import hmac
import os
import struct
import sys
import time

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect, sync_playwright

URL = os.environ["CONFIDANT_URL"]
OWNER = os.environ.get("OWNER_EMAIL", "")
DESK = os.environ.get("DESK_EMAIL", "")
CLINICIAN = os.environ.get("CLINICIAN_EMAIL", "")
CLINICIAN_SHOWN = "Dr. Ana Ruiz, PsyD"
CLINICIAN_PASSWORD = "Velvet-Compass-Meadow-58"
STAFF_PASSWORD = os.environ["STAFF_PASSWORD"]
SHOTS = os.environ["SCREENSHOTS"]
PAGES = []
PATIENT_EMAIL = "ada@mail.example"
PATIENT_PASSWORD = "Quiet-Harbour-Lamp-7731"
PATIENT_NAME = "Ada Lovelace"
PHI = [PATIENT_NAME, "Lovelace", PATIENT_EMAIL, "1990-12-10"]
TIMEOUT = 15_000

axe = Axe()
problems = []
refused = []
cache_headers = {}


def totp(secret, at=None):
    """RFC 6238 code of a base32 secret (SHA-1, 6 digits, 30 s)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def check_screen(page, name):
    """axe-core on the current screen, then screenshots at phone and desktop widths."""
    results = axe.run(page)
    for v in results.response["violations"]:
        if v["impact"] in ("serious", "critical"):
            problems.append(f"{name}: axe {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} nodes)")
    for width in (360, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def new_page(browser):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = watched(context.new_page())
    page.goto(URL + "/")
    page.wait_for_selector("#email")
    return context, page


def watched(page):
    """`page`, with every error it meets noted: a script error, a console error (a wasm panic
    names its place there before the trap), a refused request."""
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # Refused requests are the browser's to log; the answers below say which they were.
    page.on(
        "console",
        lambda m: m.type == "error"
        and not m.text.startswith("Failed to load resource")
        and problems.append(f"console error: {m.text}"),
    )

    def on_response(response):
        if "/api/v1/" in response.url:
            cache_headers[response.url] = response.headers.get("cache-control", "")
        if response.status >= 400:
            refused.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", on_response)
    PAGES.append(page)
    return page


def sign_in(page, email, password):
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form button[type=submit]")


def enroll_totp(page, name):
    secret = page.locator("code.secret").get_attribute("data-secret", timeout=TIMEOUT)
    check_screen(page, f"{name}-totp-enrollment")
    page.fill("#totp", totp(secret))
    page.click("form button[type=submit]")
    page.wait_for_selector(".codes li")
    recovery = page.locator(".codes li").first.inner_text().strip()
    check_screen(page, f"{name}-recovery-codes")
    page.click("text=I have saved my recovery codes")
    page.wait_for_selector("nav.tabs")
    return secret, recovery


def tab(page, label):
    page.click(f"nav.tabs button:has-text('{label}')")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:

            # The owner: TOTP enrollment, then signs in again with a recovery code; invites the
            # clinician by name and credentials, names front desk, verifies the audit trail.
            owner_ctx, owner = new_page(browser)
            check_screen(owner, "sign-in")
            sign_in(owner, OWNER, STAFF_PASSWORD)
            _, recovery = enroll_totp(owner, "owner")
            owner.click("header button:has-text('Sign out')")
            owner.wait_for_selector("#ended-title")
            owner.click("button:has-text('Sign in again')")
            sign_in(owner, OWNER, STAFF_PASSWORD)
            owner.wait_for_selector("#code")
            check_screen(owner, "second-factor")
            owner.fill("#code", "000000")
            owner.click("form button[type=submit]")
            expect(owner.locator("#code-error")).not_to_be_empty()
            owner.click("button:has-text('Use a recovery code instead')")
            owner.fill("#code", recovery)
            owner.click("form button[type=submit]")
            owner.wait_for_selector("nav.tabs")
            tab(owner, "Staff")
            owner.wait_for_selector(f"li.row:has-text('{DESK}')")
            owner.click("form button:has-text('Invite')")
            expect(owner.locator("#staff-role-error")).not_to_be_empty()
            owner.select_option("#staff-role", "clinician")
            owner.fill("#staff-email", CLINICIAN)
            owner.fill("#staff-name", "Dr. Ana Ruiz")
            owner.fill("#staff-credentials", "PsyD")
            owner.click("form button:has-text('Invite')")
            clinician_invitation = owner.locator("code.invitation").inner_text()
            # The staff list reloads after an invitation (rebuilding its rows): wait for it, or a
            # rename begun meanwhile is swept away with the row it was open in.
            expect(owner.locator("#staff-title ~ ul li.row:has-text('Dr. Ana Ruiz')")).to_be_visible()
            desk_row = owner.locator(f"li.row:has-text('{DESK}')")
            desk_row.locator("button:has-text('Rename')").click()
            desk_row.locator("input").first.fill("Sam Lee")
            desk_row.locator("form button[type=submit]").click()
            expect(owner.locator("li.row:has-text('Sam Lee')")).to_be_visible()
            check_screen(owner, "owner-staff")
            tab(owner, "Audit")
            expect(owner.locator("[data-verified=none]")).to_be_visible()
            owner.click("button:has-text('Verify now')")
            expect(owner.locator("[data-verified=intact]")).to_be_visible()
            check_screen(owner, "owner-audit")
            tab(owner, "Break-glass")
            owner.wait_for_selector("text=Nobody broke the glass")
            check_screen(owner, "owner-break-glass")

            # The clinician accepts the invitation and enrolls.
            clin_ctx, clin = new_page(browser)
            clin.click("text=I have an invitation")
            clin.fill("#token", clinician_invitation)
            clin.fill("#new-password", CLINICIAN_PASSWORD)
            clin.click("form button[type=submit]")
            expect(clin.locator(".notice")).to_contain_text("Your account is ready")
            sign_in(clin, CLINICIAN, CLINICIAN_PASSWORD)
            enroll_totp(clin, "clinician")
            expect(clin.locator("header")).to_contain_text(CLINICIAN_SHOWN)
            check_screen(clin, "clinician-schedule")

            # Front desk: wrong password first, then the real one and TOTP enrollment.
            desk_ctx, desk = new_page(browser)
            sign_in(desk, DESK, "not the password at all")
            expect(desk.locator(".error-note")).to_contain_text("email or password is not right")
            expect(desk.locator(".error-note")).to_contain_text("Reference")
            sign_in(desk, DESK, STAFF_PASSWORD)
            enroll_totp(desk, "front-desk")
            check_screen(desk, "front-desk-schedule")

            # A patient record, an invitation, a clinician on the care team.
            tab(desk, "Patients")
            desk.wait_for_selector("#legal_name")
            desk.click("form button:has-text('Create patient')")
            expect(desk.locator("#legal_name-error")).not_to_be_empty()
            desk.fill("#legal_name", PATIENT_NAME)
            desk.fill("#date_of_birth", "1990-12-10")
            desk.fill("#patient_email", PATIENT_EMAIL)
            desk.click("form button:has-text('Create patient')")
            desk.wait_for_selector(f"li.row:has-text('{PATIENT_NAME}')")
            check_screen(desk, "front-desk-patients")
            desk.click(f"li.row:has-text('{PATIENT_NAME}') button")
            desk.click("button:has-text('Invite to the portal')")
            invitation = desk.locator("code.invitation").inner_text()
            desk.select_option("#care-team-clinician", label=CLINICIAN_SHOWN)
            desk.click("button:has-text('Add to care team')")
            desk.wait_for_selector(f"li.row:has-text('{CLINICIAN_SHOWN}')")
            # Front desk corrects the record: a bad date is refused at the field, then saved.
            desk.reload()
            expect(desk.locator("header")).to_contain_text("Sam Lee")
            tab(desk, "Patients")
            desk.click(f"li.row:has-text('{PATIENT_NAME}') button")
            desk.click("button:has-text('Edit')")
            desk.fill("#edit-legal_name", "")
            desk.click("#edit-legal_name >> xpath=ancestor::form//button[@type='submit']")
            expect(desk.locator("#edit-legal_name-error")).not_to_be_empty()
            desk.fill("#edit-legal_name", PATIENT_NAME)
            desk.fill("#edit-phone", "+1 555 010 0199")
            desk.click("#edit-legal_name >> xpath=ancestor::form//button[@type='submit']")
            expect(desk.locator("dl.facts")).to_contain_text("+1 555 010 0199")
            PHI.append("555 010 0199")

            # Front desk gives the PHQ-9, for the clinician who reads it.
            desk.select_option("#desk-assign-form", "phq9")
            desk.click("#desk-assign-form >> xpath=ancestor::form//button[@type='submit']")
            expect(desk.locator("#desk-assign-clinician-error")).not_to_be_empty()
            desk.select_option("#desk-assign-clinician", label=CLINICIAN_SHOWN)
            desk.click("#desk-assign-form >> xpath=ancestor::form//button[@type='submit']")
            expect(desk.locator("p.notice")).to_contain_text("The form was assigned")
            check_screen(desk, "front-desk-chart")

            # The clinician sees it and gives a GAD-7 too.
            tab(clin, "Patients")
            clin.click(f"li.row:has-text('{PATIENT_NAME}') button")
            clin.wait_for_selector("li.row[data-form=phq9]")
            clin.select_option("#assign-form", "gad7")
            clin.click("button:has-text('Assign')")
            clin.wait_for_selector("li.row[data-form=gad7]")

            # The patient: invitation (a weak password first, refused with the server's reason).
            a_ctx, a = new_page(browser)
            a.click("text=I have an invitation")
            a.fill("#token", invitation)
            a.fill("#new-password", "password")
            a.click("form button[type=submit]")
            expect(a.locator("#new-password-error")).not_to_be_empty()
            check_screen(a, "invitation")
            a.fill("#new-password", PATIENT_PASSWORD)
            a.click("form button[type=submit]")
            expect(a.locator(".notice")).to_contain_text("Your account is ready")
            sign_in(a, PATIENT_EMAIL, PATIENT_PASSWORD)
            a.wait_for_selector("button[data-assignment]")
            check_screen(a, "patient-home")
            # Open notes is off here: the patient has no notes tab.
            expect(a.locator("nav.tabs button:has-text('My notes')")).to_have_count(0)
            a.click("li.row:has-text('PHQ-9') button[data-assignment]")
            a.wait_for_selector("#item-item1")
            a.check("#item-item1-2")
            a.check("#item-item2-1")
            expect(a.locator("p.save-state")).to_have_attribute("data-save", "saved")
            check_screen(a, "patient-form")

            # The same patient on another device: the draft is there.
            b_ctx, b = new_page(browser)
            sign_in(b, PATIENT_EMAIL, PATIENT_PASSWORD)
            b.click("li.row:has-text('PHQ-9') button[data-assignment]")
            b.wait_for_selector("#item-item1")
            expect(b.locator("#item-item1-2")).to_be_checked()
            expect(b.locator("#item-item2-1")).to_be_checked()
            answers = {f"item{n}": 1 for n in range(3, 9)}
            for item, option in answers.items():
                b.check(f"#item-{item}-{option}")
            # A required question left out is named at the question.
            b.click("form button:has-text('Submit')")
            expect(b.locator("#item-item9-error")).to_contain_text("Please answer")
            expect(b.locator(".crisis")).to_have_count(0)
            b.check("#item-item9-1")
            expect(b.locator(".crisis")).to_contain_text("988")
            check_screen(b, "patient-crisis")
            b.check("#item-difficulty-0")
            b.click("form button:has-text('Submit')")
            b.wait_for_selector("[data-submitted=true]")
            expect(b.locator(".crisis")).to_contain_text("has been alerted")
            check_screen(b, "patient-submitted")
            expected_score = 2 + 1 + sum(answers.values()) + 1

            # The clinician sees it without reloading.
            clin.wait_for_selector(".toast.urgent")
            clin.wait_for_selector("[data-urgent=true]")
            expect(clin.locator(f".score[data-score='{expected_score}']")).to_be_visible()
            expect(clin.locator("li.alert.urgent").first).to_be_visible()
            check_screen(clin, "clinician-chart")

            # Front desk books; the clinician's week updates live; a conflict is explained.
            tab(clin, "Schedule")
            clin.click("button:has-text('Week')")
            tomorrow = datetime.date.today() + datetime.timedelta(days=1)
            tab(desk, "Schedule")
            desk.select_option("#clinician_id", label=CLINICIAN_SHOWN)
            desk.select_option("#patient_id", label=PATIENT_NAME)
            desk.fill("#starts_at_ms", f"{tomorrow}T10:00")
            desk.fill("#ends_at_ms", "50")
            # The booking's answer is lost on the way back (the server booked it): the portal
            # retries with the same Idempotency-Key and gets the first answer, so the
            # appointment is booked once and the desk sees "Booked", not a conflict.
            bookings = []

            def lose_first_answer(route):
                bookings.append(route.request.headers.get("idempotency-key"))
                if len(bookings) == 1:
                    route.fetch()
                    route.abort("connectionreset")
                else:
                    route.continue_()

            replayed = []
            desk.on(
                "response",
                lambda r: r.url.endswith("/api/v1/appointments")
                and replayed.append(r.headers.get("idempotent-replayed")),
            )
            desk.route("**/api/v1/appointments", lose_first_answer)
            desk.click("form button:has-text('Book an appointment')")
            expect(desk.locator(".notice")).to_contain_text("Booked")
            desk.unroute("**/api/v1/appointments")
            if len(bookings) != 2 or not bookings[0] or bookings[0] != bookings[1]:
                problems.append(f"a lost booking answer was not retried with its key: {bookings}")
            if replayed != ["true"]:
                problems.append(f"the retried booking was not the first answer replayed: {replayed}")
            clin.wait_for_selector(f"li.row:has-text('{PATIENT_NAME}')")
            if clin.locator(f"li.row:has-text('{PATIENT_NAME}')").count() != 1:
                problems.append("the retried booking was booked twice")
            desk.fill("#starts_at_ms", f"{tomorrow}T10:30")
            desk.click("form button:has-text('Book an appointment')")
            expect(desk.locator("#starts_at_ms-error")).to_contain_text("overlaps another appointment")
            check_screen(desk, "front-desk-conflict")
            check_screen(clin, "clinician-week")
            # Front desk moves it (a bad length refused at the field), sends a reminder now and
            # sees its state, then cancels; the clinician's week follows live.
            desk.click("button:has-text('Week')")
            desk.click(f"li[data-appointment]:has-text('{PATIENT_NAME}') button:has-text('Edit')")
            desk.fill("#reschedule-minutes", "0")
            desk.click("form button:has-text('Reschedule')")
            expect(desk.locator("#reschedule-minutes-error")).to_contain_text("between 5 and 480")
            desk.fill("#reschedule-minutes", "50")
            desk.fill("#reschedule-starts", f"{tomorrow}T11:00")
            desk.click("form button:has-text('Reschedule')")
            expect(clin.locator(f"li.row:has-text('{PATIENT_NAME}')")).to_contain_text("11:00")
            desk.click(f"li[data-appointment]:has-text('{PATIENT_NAME}') button:has-text('Edit')")
            desk.click("button:has-text('Send reminder now')")
            expect(desk.locator("li[data-reminder-state]").first).to_be_visible()
            check_screen(desk, "front-desk-appointment")
            # The patient's home shows the appointment with the clinician's name, live.
            tab(b, "Home")
            expect(b.locator("li[data-appointment]").first).to_contain_text(CLINICIAN_SHOWN)
            check_screen(b, "patient-appointments")
            # Reminder preferences: a key that is not an OpenPGP key is refused at the field.
            tab(b, "Reminders")
            b.wait_for_selector("#pgp_public_key")
            b.fill("#pgp_public_key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot a key\n")
            b.click("form button:has-text('Save')")
            expect(b.locator("#pgp-error")).not_to_be_empty(timeout=TIMEOUT)
            check_screen(b, "patient-preferences")
            # Front desk cancels: the clinician's week shows it cancelled, the patient's home no
            # longer lists it.
            desk.click("button:has-text('Cancel appointment')")
            expect(clin.locator(f"li.row.cancelled:has-text('{PATIENT_NAME}')")).to_be_visible()
            tab(b, "Home")
            expect(b.locator("li[data-appointment]")).to_have_count(0)

            # Sign-out leaves nothing behind.
            for name, page in (("front desk", desk), ("patient", b)):
                page.click("header button:has-text('Sign out')")
                page.wait_for_selector("#ended-title")
                check_screen(page, f"signed-out-{name.replace(' ', '-')}")
                content = page.content()
                for phi in PHI:
                    if phi in content:
                        problems.append(f"{name}: {phi!r} is still in the page after sign-out")
                storage = page.evaluate(
                    "async () => [localStorage.length, sessionStorage.length, (await indexedDB.databases()).length]"
                )
                if storage != [0, 0, 0]:
                    problems.append(f"{name}: browser storage after sign-out: {storage}")
                if any(c["name"].startswith("__Host-confidant") for c in page.context.cookies()):
                    problems.append(f"{name}: a session cookie survived sign-out")
                page.go_back()
                for phi in PHI:
                    if phi in page.content():
                        problems.append(f"{name}: {phi!r} is shown by the back button")
            stored = [u for u, cc in cache_headers.items() if "no-store" not in cc]
            if stored:
                problems.append(f"API responses without Cache-Control: no-store: {stored}")

            for ctx in (owner_ctx, desk_ctx, clin_ctx, a_ctx, b_ctx):
                ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise

    report("portal flow")


def launch(pw):
    """Debian's Chromium, headless (nothing downloaded)."""
    return pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])


def report(name):
    """Exits non-zero listing every problem noted on the way, or says the script passed."""
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{name}: ok")


def photograph_failure():
    """On a failure, says what was already wrong and photographs every open page."""
    print("\n".join(problems + ["refused requests:"] + refused), file=sys.stderr)
    for n, page in enumerate(PAGES):
        try:
            page.screenshot(path=os.path.join(SHOTS, f"failure-{os.getpid()}-{n}.png"), full_page=True)
        except Exception:
            pass


if __name__ == "__main__":
    main()
