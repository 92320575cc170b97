"""Clinical notes in a real browser (Debian's Chromium, headless, through Playwright), against a
real server on PostgreSQL with open notes on, started by `tests/api/portal.rs`, which made the
practice: Olive Park (an owner), Dr. Ana Ruiz, Ben Ode (pre-licensed), front desk, and a patient
on both clinicians' care team with two PHQ-9 results and one GAD-7.

- Olive adds the practice's own template, section by section: a choice with one choice is
  refused by the server at that section's choices (focused); a section added then removed; once
  fixed it is listed as the practice's own, version 1. A new version of it adds a section
  (version 2). On the staff screen she gives Ana a supervisor and clears it, then marks Ben as
  supervised by Ana: both rows say so.
- Ana opens the patient's chart: the PHQ-9 and GAD-7 series are drawn on their severity bands,
  with the same results as a table and a summary; the note templates are listed.
- Ana begins a SOAP note and types a canary sentence: the draft is saved as typed ("Saved").
- In a second browser (signed in with a recovery code) she opens the draft and finds the
  canary; signing with a required section empty is refused at the section (no code spent); a
  wrong code is refused at the code; the right one signs: the note shows locked, final.
- She adds an addendum (empty refused at the field), signed with a fresh code: shown under the
  note, which is unchanged.
- The signed note downloads as a PDF holding its text, its addendum and its signer.
- Ben writes and signs a note: it awaits co-signature and appears in Ana's queue; she
  co-signs it, the queue empties and the note is final.
- Front desk sees both notes listed by date, kind and status, with no way to open them; the
  page holds no note content, and the note's route refuses them.
- Ana begins an intake assessment: its mental status exam is radio buttons and check boxes,
  saved as chosen and found again after a reload.
- Ana begins a note on Olive's template (its version 2): its sections are the form, saved as
  typed.
- The patient, under open notes, lists their signed progress notes (both, no draft), reads
  Ana's read-only with its addendum and signature, and Ben's with Ana's co-signature; the
  drafts' routes refuse them.

Every screen is scanned with axe-core and photographed at 360 and 1280 px into $SCREENSHOTS.

Environment: CONFIDANT_URL, STAFF_PASSWORD, SCREENSHOTS, OWNER_EMAIL, OWNER_RECOVERY, ANA_EMAIL,
ANA_ID, ANA_RECOVERY (two codes, space-separated), ANA_SECRET, BEN_EMAIL, BEN_ID, BEN_SECRET,
DESK_EMAIL, DESK_SECRET, PATIENT_ID, PATIENT_EMAIL, PATIENT_PASSWORD, CANARY.
"""

import os
import subprocess
import sys
import time

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(__file__))
from portal_flow import (  # noqa: E402
    check_screen,
    launch,
    new_page,
    photograph_failure,
    problems,
    report,
    sign_in,
    tab,
    totp,
)

PASSWORD = os.environ["STAFF_PASSWORD"]
OWNER = os.environ["OWNER_EMAIL"]
OWNER_RECOVERY = os.environ["OWNER_RECOVERY"]
ANA = os.environ["ANA_EMAIL"]
ANA_ID = os.environ["ANA_ID"]
ANA_RECOVERY = os.environ["ANA_RECOVERY"].split()
ANA_SECRET = os.environ["ANA_SECRET"]
BEN = os.environ["BEN_EMAIL"]
BEN_ID = os.environ["BEN_ID"]
BEN_SECRET = os.environ["BEN_SECRET"]
DESK = os.environ["DESK_EMAIL"]
DESK_SECRET = os.environ["DESK_SECRET"]
PATIENT = os.environ["PATIENT_ID"]
PATIENT_EMAIL = os.environ["PATIENT_EMAIL"]
PATIENT_PASSWORD = os.environ["PATIENT_PASSWORD"]
CANARY = os.environ["CANARY"]

# Each TOTP time step signs once per account: the last one used, per secret. The server made
# each account's enrollment with a step at most one before now.
LAST_STEP = {}


def fresh_code(secret):
    """A code of a time step this account has not used, waiting for the next step if need be."""
    last = LAST_STEP.get(secret, int(time.time() // 30) - 1)
    step = last + 1
    while step > int(time.time() // 30) + 1:
        time.sleep(1)
    LAST_STEP[secret] = step
    return totp(secret, at=step * 30)


def staff_sign_in(page, email, secret=None, recovery=None):
    sign_in(page, email, PASSWORD)
    page.wait_for_selector("#code")
    if recovery:
        page.click("button:has-text('Use a recovery code instead')")
        page.fill("#code", recovery)
    else:
        page.fill("#code", fresh_code(secret))
    page.click("form button[type=submit]")
    page.wait_for_selector("nav.tabs")


def open_chart(page):
    tab(page, "Patients")
    page.click(f"button[data-patient='{PATIENT}']")
    page.wait_for_selector("#notes-title")


def saved(page):
    expect(page.locator("[data-save=saved]")).to_be_visible()


def draft_section(page, n):
    """The template form's section `n` (from 0)."""
    return page.locator("fieldset[data-section-draft]").nth(n)


def owner_adds_a_template_and_a_supervisor(browser):
    """Olive: the practice's template (refused at the field first), a new version of it, and
    Ben supervised by Ana."""
    ctx, owner = new_page(browser)
    staff_sign_in(owner, OWNER, recovery=OWNER_RECOVERY)
    tab(owner, "Templates")
    expect(owner.locator("section.template")).to_have_count(8)
    owner.fill("#tpl-title", "Brief check-in")
    owner.select_option("#tpl-kind", "progress")
    draft_section(owner, 0).locator("input[id$='-label']").fill("Summary")
    draft_section(owner, 0).locator("input[type=checkbox]").check()
    owner.click("#tpl-add-section")
    risk = draft_section(owner, 1)
    risk.locator("input[id$='-label']").fill("Risk today")
    risk.locator("select").select_option("choice")
    risk.locator("textarea").fill("none")
    owner.click("button:has-text('Save template')")
    expect(risk.locator("p.error[id$='-options-error']")).to_contain_text("2 to 30 choices")
    expect(risk.locator("textarea")).to_be_focused()
    expect(risk.locator("textarea")).to_have_attribute("aria-invalid", "true")
    check_screen(owner, "template-refused")
    risk.locator("textarea").fill("none\nlow\nhigh")
    owner.click("#tpl-add-section")
    expect(owner.locator("fieldset[data-section-draft]")).to_have_count(3)
    owner.click("button:has-text('Remove section 3')")
    expect(owner.locator("fieldset[data-section-draft]")).to_have_count(2)
    owner.click("button:has-text('Save template')")
    expect(owner.locator(".template-editor .notice")).to_contain_text("Brief check-in (version 1)")
    first = owner.locator("section.template[data-template=brief_check_in][data-version='1']")
    expect(first).to_contain_text("the practice's own")
    expect(first).to_contain_text("Risk today · one choice: none, low, high")
    expect(owner.locator("fieldset[data-section-draft] input[id$='-label']")).to_have_value("")
    check_screen(owner, "templates-owner")

    # Its next version: the form starts as a copy; a list section is added.
    first.locator("button:has-text('New version')").click()
    expect(owner.locator("#tpl-title")).to_have_value("Brief check-in")
    expect(owner.locator("#tpl-kind")).to_have_value("progress")
    expect(owner.locator("fieldset[data-section-draft]")).to_have_count(2)
    expect(draft_section(owner, 1).locator("select")).to_have_value("choice")
    owner.click("#tpl-add-section")
    homework = draft_section(owner, 2)
    homework.locator("input[id$='-label']").fill("Homework")
    homework.locator("select").select_option("list")
    expect(homework.locator("select")).to_be_visible()
    check_screen(owner, "template-new-version")
    owner.click("button:has-text('Save new version')")
    second = owner.locator("section.template[data-template=brief_check_in][data-version='2']")
    expect(second).to_contain_text("Homework · list")
    expect(first.locator("button:has-text('New version')")).to_have_count(0)

    # A supervisor chosen by mistake, then cleared; Ben, pre-licensed, supervised by Ana.
    tab(owner, "Staff")
    ana_row = owner.locator(f"li[data-supervisee='{ANA_ID}']")
    ana_row.locator("select").select_option(BEN_ID)
    ana_row.locator("button:has-text('Save')").click()
    expect(owner.locator(f"li[data-supervisee='{ANA_ID}'][data-supervisor='{BEN_ID}']")).to_have_count(1)
    expect(ana_row.locator("[data-supervision-state]")).to_have_text("Supervised by Ben Ode")
    ana_row.locator("select").select_option("")
    ana_row.locator("button:has-text('Save')").click()
    expect(owner.locator(f"li[data-supervisee='{ANA_ID}'][data-supervisor='']")).to_have_count(1)
    expect(ana_row.locator("[data-supervision-state]")).to_have_text("Not supervised")
    ben_row = owner.locator(f"li[data-supervisee='{BEN_ID}']")
    expect(ben_row.locator("[data-supervision-state]")).to_have_text("Not supervised")
    ben_row.locator("select").select_option(ANA_ID)
    ben_row.locator("button:has-text('Save')").click()
    expect(owner.locator(f"li[data-supervisee='{BEN_ID}'][data-supervisor='{ANA_ID}']")).to_have_count(1)
    expect(ben_row.locator("[data-supervision-state]")).to_have_text("Supervised by Dr. Ana Ruiz")
    expect(owner.locator(f"li[data-supervisee='{ANA_ID}'] [data-supervises]")).to_have_text("Supervises Ben Ode")
    check_screen(owner, "staff-supervision")
    ctx.close()


def patient_reads_open_notes(browser, drafts):
    """The patient under open notes: their final progress notes only, each read-only."""
    ctx, pat = new_page(browser)
    sign_in(pat, PATIENT_EMAIL, PATIENT_PASSWORD)
    pat.wait_for_selector("nav.tabs")
    tab(pat, "My notes")
    expect(pat.locator("li[data-note]")).to_have_count(2)
    expect(pat.locator("li[data-status=final]")).to_have_count(2)
    check_screen(pat, "patient-notes")
    pat.locator("li[data-note]:has-text('Dr. Ana Ruiz') button").click()
    expect(pat.locator("dd[data-section=subjective]")).to_contain_text(CANARY)
    expect(pat.locator("[data-locked=true]")).to_be_visible()
    expect(pat.locator("li.addendum")).to_contain_text("50 minutes")
    expect(pat.locator("section.note textarea, section.note input, #addendum-text, #cosign-code")).to_have_count(0)
    check_screen(pat, "patient-note")
    pat.click("button:has-text('Back to my notes')")
    pat.locator("li[data-note]:has-text('Ben Ode') button").click()
    expect(pat.locator("dd[data-section=data]")).to_contain_text("panic episodes")
    expect(pat.locator("dl.facts")).to_contain_text("Dr. Ana Ruiz (co-signed")
    page_text = pat.content()
    for draft_text in ("coping well",):
        if draft_text in page_text:
            problems.append(f"the patient's page shows a draft: {draft_text!r}")
    for note_id in drafts:
        status = pat.evaluate(
            """async (id) => (await fetch(`/api/v1/notes/${id}`, {headers: {"X-Confidant-Csrf": "1"}})).status""",
            note_id,
        )
        if status != 403:
            problems.append(f"the patient reading a draft got {status}, not 403")
    ctx.close()


def main():
    os.makedirs(os.environ["SCREENSHOTS"], exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            owner_adds_a_template_and_a_supervisor(browser)

            # Ana: the chart with the scores drawn, the templates.
            ana_ctx, ana = new_page(browser)
            staff_sign_in(ana, ANA, recovery=ANA_RECOVERY[0])
            open_chart(ana)
            phq9 = ana.locator("[data-chart=phq9]")
            expect(phq9.locator("svg circle")).to_have_count(2)
            expect(phq9.locator("svg rect.band")).to_have_count(5)
            expect(phq9.locator("tbody tr")).to_have_count(2)
            expect(phq9.locator("[data-summary=phq9]")).to_contain_text("PHQ-9 latest 14 (Moderate), down 6 since the first")
            gad7 = ana.locator("[data-chart=gad7]")
            expect(gad7.locator("svg circle")).to_have_count(1)
            expect(gad7.locator("svg rect.band")).to_have_count(4)
            expect(gad7.locator("tbody tr[data-total='9']")).to_contain_text("Mild")
            expect(ana.locator("#notes-title ~ p.muted")).to_contain_text("No notes yet")
            check_screen(ana, "notes-chart")
            tab(ana, "Templates")
            expect(ana.locator("section.template")).to_have_count(10)
            expect(ana.locator("[data-template=biopsychosocial]")).to_contain_text("one choice")
            expect(ana.locator("[data-template=brief_check_in][data-version='2']")).to_contain_text("Homework")
            expect(ana.locator("section.template button, #tpl-title")).to_have_count(0)
            check_screen(ana, "notes-templates")

            # Ana begins a SOAP note: no template chosen is named at the field first.
            open_chart(ana)
            ana.click("button:has-text('Begin a note')")
            expect(ana.locator("#note-template-error")).to_contain_text("Choose a template")
            ana.select_option("#note-template", "soap")
            ana.click("button:has-text('Begin a note')")
            ana.wait_for_selector("#section-subjective")
            expect(ana.locator("[data-context=phq9]")).to_contain_text("PHQ-9 14")
            ana.fill("#section-subjective", CANARY)
            saved(ana)
            ana.fill("#section-objective", "Calm, oriented, good eye contact.")
            ana.fill("#section-assessment", "Mood improving; PHQ-9 down 6.")
            saved(ana)
            check_screen(ana, "note-draft")

            # A second browser: the draft resumes there.
            other_ctx, other = new_page(browser)
            staff_sign_in(other, ANA, recovery=ANA_RECOVERY[1])
            open_chart(other)
            expect(other.locator("li[data-status=draft]")).to_have_count(1)
            other.click("li[data-status=draft] button:has-text('Continue')")
            expect(other.locator("#section-subjective")).to_have_value(CANARY)
            expect(other.locator("#section-assessment")).to_have_value("Mood improving; PHQ-9 down 6.")
            # Signing with the plan empty: named at the section, no code spent.
            other.fill("#sign-code", "123456")
            other.click("button:has-text('Sign note')")
            expect(other.locator("#section-plan-error")).to_contain_text("required")
            other.fill("#section-plan", "Weekly sessions; continue behavioural activation.")
            saved(other)
            other.fill("#sign-code", "000000")
            other.click("button:has-text('Sign note')")
            expect(other.locator("#sign-code-error")).to_contain_text("not right")
            check_screen(other, "note-sign-refused")
            other.fill("#sign-code", fresh_code(ANA_SECRET))
            other.click("button:has-text('Sign note')")
            expect(other.locator("[data-locked=true]")).to_be_visible()
            expect(other.locator("[data-note-status=final]")).to_be_visible()
            expect(other.locator("dd[data-section=subjective]")).to_contain_text(CANARY)
            expect(other.locator("#section-subjective")).to_have_count(0)
            check_screen(other, "note-signed")

            # An addendum: empty refused at the field, then signed with a fresh code.
            other.click("button:has-text('Sign addendum')")
            expect(other.locator("#addendum-text-error")).to_contain_text("Write the addendum")
            other.fill("#addendum-text", "Correction: the session lasted 50 minutes.")
            other.fill("#addendum-code", fresh_code(ANA_SECRET))
            other.click("button:has-text('Sign addendum')")
            expect(other.locator("li.addendum")).to_have_count(1)
            expect(other.locator("li.addendum")).to_contain_text("50 minutes")
            expect(other.locator("dd[data-section=subjective]")).to_contain_text(CANARY)
            check_screen(other, "note-addendum")

            # The signed note as a PDF for release of records: downloaded, read back.
            with other.expect_download() as download:
                other.click("a:has-text('Download PDF')")
            pdf = download.value.path()
            text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
            for shown in (CANARY, "Weekly sessions", "Addenda", "50 minutes", "Dr. Ana Ruiz"):
                if shown not in text:
                    problems.append(f"the PDF lacks {shown!r}")
            if "Lovelace" in text:
                problems.append("the PDF holds more than the note's screen (the patient's name)")

            # Ben, supervised: his signed note awaits Ana's co-signature.
            ben_ctx, ben = new_page(browser)
            staff_sign_in(ben, BEN, secret=BEN_SECRET)
            open_chart(ben)
            ben.select_option("#note-template", "dap")
            ben.click("button:has-text('Begin a note')")
            ben.wait_for_selector("#section-data")
            ben.fill("#section-data", "Reported two panic episodes this week.")
            ben.fill("#section-assessment", "Panic symptoms persist.")
            ben.fill("#section-plan", "Interoceptive exposure next session.")
            saved(ben)
            ben.fill("#sign-code", fresh_code(BEN_SECRET))
            ben.click("button:has-text('Sign note')")
            expect(ben.locator("[data-note-status=awaiting_cosign]")).to_be_visible()
            expect(ben.locator("dd[data-status=awaiting_cosign]")).to_contain_text("Awaiting co-signature")

            tab(other, "Co-sign")
            expect(other.locator("li.row[data-note]")).to_have_count(1)
            check_screen(other, "cosign-queue")
            other.click("button:has-text('Review and co-sign')")
            expect(other.locator("dd[data-section=data]")).to_contain_text("panic episodes")
            other.fill("#cosign-code", fresh_code(ANA_SECRET))
            other.click("button:has-text('Co-sign note')")
            expect(other.locator("[data-note-status=final]")).to_be_visible()
            check_screen(other, "note-cosigned")
            tab(other, "Co-sign")
            expect(other.locator("text=No note awaits your co-signature")).to_be_visible()

            # Front desk: that the notes exist, their date, kind and status; never content.
            desk_ctx, desk = new_page(browser)
            staff_sign_in(desk, DESK, secret=DESK_SECRET)
            open_chart(desk)
            expect(desk.locator("li[data-note]")).to_have_count(2)
            expect(desk.locator("li[data-status=final]")).to_have_count(2)
            expect(desk.locator("li[data-note] button")).to_have_count(0)
            check_screen(desk, "notes-front-desk")
            page_text = desk.content()
            for secret_text in (CANARY, "panic episodes", "Mood improving"):
                if secret_text in page_text:
                    problems.append(f"front desk's page shows note content: {secret_text!r}")
            note_id = desk.locator("li[data-note]").first.get_attribute("data-note")
            status = desk.evaluate(
                """async (id) => (await fetch(`/api/v1/notes/${id}`, {headers: {"X-Confidant-Csrf": "1"}})).status""",
                note_id,
            )
            if status != 403:
                problems.append(f"front desk reading a note got {status}, not 403")

            # A template of structured choices: the mental status exam as radio buttons and
            # check boxes, saved as chosen.
            open_chart(ana)
            ana.select_option("#note-template", "biopsychosocial")
            ana.click("button:has-text('Begin a note')")
            ana.wait_for_selector("#section-mse_mood")
            ana.check("#section-mse_mood input[value=anxious]")
            ana.check("#section-mse_thought_content input[value=obsessions]")
            ana.check("#section-mse_thought_content input[value=paranoia]")
            saved(ana)
            ana.uncheck("#section-mse_thought_content input[value=paranoia]")
            saved(ana)
            check_screen(ana, "note-structured-draft")
            ana.reload()
            ana.wait_for_selector("nav.tabs")
            open_chart(ana)
            ana.click("li[data-status=draft] button:has-text('Continue')")
            expect(ana.locator("#section-mse_mood input[value=anxious]")).to_be_checked()
            expect(ana.locator("#section-mse_thought_content input[value=obsessions]")).to_be_checked()
            expect(ana.locator("#section-mse_thought_content input[value=paranoia]")).not_to_be_checked()

            # The practice's template, as a clinician sees and uses it: its latest version.
            open_chart(ana)
            ana.select_option("#note-template", "brief_check_in")
            ana.click("button:has-text('Begin a note')")
            ana.wait_for_selector("#section-summary")
            expect(ana.locator("#section-risk_today input[type=radio]")).to_have_count(3)
            expect(ana.locator("#section-homework")).to_be_visible()
            ana.fill("#section-summary", "Brief call: coping well.")
            ana.check("#section-risk_today input[value=low]")
            saved(ana)
            check_screen(ana, "note-practice-template")
            open_chart(ana)
            expect(ana.locator("li[data-status=draft]")).to_have_count(2)
            drafts = ana.locator("li[data-status=draft]").evaluate_all("rows => rows.map(r => r.dataset.note)")

            patient_reads_open_notes(browser, drafts)

            for ctx in (ana_ctx, other_ctx, ben_ctx, desk_ctx):
                ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise
    report("notes")


if __name__ == "__main__":
    main()
