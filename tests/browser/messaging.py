"""End-to-end encrypted messaging in a real browser (Debian's Chromium, headless, through
Playwright), against a real server on PostgreSQL started by `tests/api/portal.rs`.

- The sign-in page loads no MLS code: the MLS module is fetched only after sign-in.
- The clinician signs in (TOTP enrolled in the browser); the patient signs in on a "laptop" and
  a "phone" (two browser contexts, so two devices of one account).
- The laptop starts a conversation with the care team: it shows who can read it (the patient's
  two devices and the clinician's one). A canary sentence typed on the laptop appears live on
  the clinician's screen (counted unread first) and on the phone; the clinician's reply appears
  live on both.
- Receipts: the laptop's message shows "Delivered" once the clinician's device has it, "Read"
  once the clinician opened the conversation; the clinician's reply shows "Read" as the open
  conversation on the laptop shows it.
- The phone goes away (its page closed); two messages follow; the phone comes back (reload of
  the same browser profile: the device is opened from IndexedDB) and catches up: every
  message once, in order.
- The device's vault holds nothing readable: IndexedDB records are sealed ({iv, data}), the
  canary is in none, the key cannot be exported, localStorage and sessionStorage are empty.
- The laptop removes the phone from its devices (a lost phone): the conversation drops it by a
  commit, and the phone, reloaded, says it was removed and shows nothing.
- Attachments: a PDF holding the canary and an image, encrypted in the laptop's page; the
  clinician opens both (the image previewed, the PDF offered to save with the same bytes); a
  file over 10 MB and a text file are refused at the field.
- A shared computer: the patient signs in with "don't keep my messages here"; the laptop lets
  that new device into the conversation, which then reads what follows; signing out removes
  that device at the server and erases its vault, and the laptop commits it out.

Environment: CONFIDANT_URL, CLINICIAN_EMAIL, STAFF_PASSWORD, PATIENT_EMAIL, PATIENT_PASSWORD,
CANARY, SCREENSHOTS.
"""

import base64
import os
import sys

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(__file__))
from portal_flow import (  # noqa: E402
    TIMEOUT,
    check_screen,
    enroll_totp,
    launch,
    new_page,
    photograph_failure,
    problems,
    report,
    sign_in,
    tab,
    watched,
)

CLINICIAN = os.environ["CLINICIAN_EMAIL"]
STAFF_PASSWORD = os.environ["STAFF_PASSWORD"]
PATIENT = os.environ["PATIENT_EMAIL"]
PATIENT_PASSWORD = os.environ["PATIENT_PASSWORD"]
CANARY = os.environ["CANARY"]
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

# What the browser's vault holds for this origin: every record of every store, as JSON-able
# values (sealed records are {iv, data} byte arrays; a CryptoKey shows its properties).
VAULT_DUMP = """async () => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open("confidant-device");
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
  });
  const out = {};
  for (const name of db.objectStoreNames) {
    out[name] = await new Promise((ok) => {
      const r = db.transaction(name).objectStore(name).getAll();
      r.onsuccess = () => ok(r.result.map((v) => {
        if (v instanceof CryptoKey) return {extractable: v.extractable, algorithm: v.algorithm.name};
        const o = {};
        for (const [k, x] of Object.entries(v)) o[k] = x instanceof Uint8Array ? Array.from(x) : x;
        return o;
      }));
    });
  }
  db.close();
  return out;
}"""


def messages_ready(page):
    tab(page, "Messages")
    page.wait_for_selector("#devices-title", timeout=30_000)


def open_first_conversation(page):
    page.locator("li.row[data-conversation] button").first.click()
    page.wait_for_selector("#conversation-title")


def send(page, text):
    page.fill("#message", text)
    page.click("form button:has-text('Send')")
    expect(page.locator("li.message.mine", has_text=text)).to_be_visible()
    expect(page.locator("#message")).to_have_value("")


def receipt(page, text):
    """Where the page's own message holding `text` stands with the others (sent, delivered, read)."""
    return page.locator("li.message.mine", has_text=text).locator("[data-receipt]")


def bodies(page):
    return page.locator("ol.messages li.message:not(.membership) p.body").all_inner_texts()


def main():
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            # The clinician: no MLS code before sign-in; after it, a device of their own.
            clin_ctx, clin = new_page(browser)
            fetched = []
            clin.on("request", lambda r: fetched.append(r.url))
            clin.wait_for_timeout(500)
            if any("/assets/mls" in u for u in fetched):
                problems.append("the sign-in page fetched the MLS module")
            sign_in(clin, CLINICIAN, STAFF_PASSWORD)
            enroll_totp(clin, "messaging-clinician")
            messages_ready(clin)
            if not any("/assets/mls" in u for u in fetched):
                problems.append("the MLS module was not fetched after sign-in")
            expect(clin.locator("text=No conversations yet.")).to_be_visible()

            # The patient's phone, then laptop: two devices of one account.
            phone_ctx, phone = new_page(browser)
            sign_in(phone, PATIENT, PATIENT_PASSWORD)
            messages_ready(phone)
            laptop_ctx, laptop = new_page(browser)
            sign_in(laptop, PATIENT, PATIENT_PASSWORD)
            messages_ready(laptop)
            expect(laptop.locator("li.row[data-device]")).to_have_count(2)
            check_screen(laptop, "messages-patient-list")

            laptop.click("button:has-text('Message your care team')")
            laptop.wait_for_selector("#conversation-title")
            readers = laptop.locator("[data-readers]")
            expect(readers).to_contain_text("You (2 devices)")
            expect(readers).to_contain_text("(1 device)")
            send(laptop, CANARY)
            check_screen(laptop, "messages-patient-conversation")

            # Live on the clinician's screen (unread first) and on the phone.
            expect(clin.locator("li.row[data-conversation] .badge")).to_have_attribute("data-unread", "1", timeout=TIMEOUT)
            expect(clin.locator("li.row[data-conversation]")).to_contain_text("Ada Lovelace")
            # The clinician's device has it, unread: the laptop says delivered, not read.
            expect(receipt(laptop, CANARY)).to_have_attribute("data-receipt", "delivered", timeout=TIMEOUT)
            expect(receipt(laptop, CANARY)).to_have_text("Delivered")
            check_screen(clin, "messages-clinician-list")
            open_first_conversation(clin)
            expect(clin.locator("li.message", has_text=CANARY)).to_be_visible()
            expect(clin.locator("[data-readers]")).to_contain_text("Ada Lovelace (2 devices)")
            # The clinician opened it: read, on the laptop and on the patient's phone alike.
            expect(receipt(laptop, CANARY)).to_have_attribute("data-receipt", "read", timeout=TIMEOUT)
            send(clin, "Thank you for telling me. Let's talk about it on Thursday.")
            # The laptop shows the conversation: the reply is read as it arrives.
            expect(receipt(clin, "talk about it on Thursday")).to_have_attribute("data-receipt", "read", timeout=TIMEOUT)
            check_screen(clin, "messages-clinician-conversation")
            open_first_conversation(phone)
            expect(phone.locator("li.message", has_text=CANARY)).to_be_visible()
            expect(phone.locator("li.message", has_text="talk about it on Thursday")).to_be_visible()
            expect(laptop.locator("li.message", has_text="talk about it on Thursday")).to_be_visible()

            # The phone goes away; two messages follow; it comes back and catches up, in order.
            phone_url = phone.url
            phone.close()
            send(laptop, "Missed one: I will bring my pill box.")
            send(clin, "Missed two: see you Thursday at 3.")
            phone = watched(phone_ctx.new_page())
            phone.goto(phone_url)
            messages_ready(phone)
            expect(phone.locator("li.row[data-conversation] .badge")).to_have_attribute("data-unread", "1")
            open_first_conversation(phone)
            # Opened before or after the list arrived, it is the care team's conversation.
            expect(phone.locator("#conversation-title")).to_have_text("Your care team")
            expect(phone.locator("li.message", has_text="Missed two")).to_be_visible()
            expected = [
                CANARY,
                "Thank you for telling me. Let's talk about it on Thursday.",
                "Missed one: I will bring my pill box.",
                "Missed two: see you Thursday at 3.",
            ]
            shown = bodies(phone)
            if shown != expected:
                problems.append(f"the phone caught up with {shown!r}, expected {expected!r}")
            check_screen(phone, "messages-phone-caught-up")

            # Nothing readable in the browser's storage.
            vault = phone.evaluate(VAULT_DUMP)
            if len(vault.get("messages", [])) != 4:
                problems.append(f"the phone's vault holds {len(vault.get('messages', []))} messages, not 4")
            for record in vault.get("messages", []) + vault.get("state", []):
                if set(record) - {"iv", "data", "keep"}:
                    problems.append(f"a vault record is not sealed: {sorted(record)}")
                if CANARY.encode() in bytes(record.get("data", [])):
                    problems.append("the vault holds the canary in the clear")
            for key in vault.get("keys", []):
                if key.get("extractable") is not False:
                    problems.append(f"the vault's key is extractable: {key}")
            if phone.evaluate("localStorage.length + sessionStorage.length") != 0:
                problems.append("localStorage or sessionStorage holds something")

            # The laptop removes the phone (lost): it is committed out and learns it on return.
            tab(laptop, "Messages")
            laptop.click("button:has-text('Back to conversations')")
            phone_row = laptop.locator("li.row[data-device]:not(:has-text('This browser'))")
            phone_row.locator("button:has-text('Remove')").click()
            expect(laptop.locator("li.row[data-device]")).to_have_count(1)
            open_first_conversation(laptop)
            expect(laptop.locator("[data-readers]")).to_contain_text("You (1 device)", timeout=TIMEOUT)
            send(laptop, "After the phone was lost.")
            expect(clin.locator("li.message", has_text="After the phone was lost.")).to_be_visible()
            expect(clin.locator("[data-readers]")).to_contain_text("Ada Lovelace (1 device)")
            # Attachments: encrypted in the page, opened on the other side after both digests
            # check; an image previewed from the page's memory, a PDF offered to save.
            letter = b"%PDF-1.4\n% " + CANARY.encode() + b"\n%%EOF\n"
            laptop.set_input_files("#attachment", files=[{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": letter}])
            laptop.fill("#message", "My discharge letter, attached.")
            laptop.click("form button:has-text('Send')")
            expect(laptop.locator("li.message.mine .attachment[data-media-type='application/pdf']")).to_be_visible()
            laptop.set_input_files("#attachment", files=[{"name": "scan.png", "mimeType": "image/png", "buffer": PNG}])
            laptop.click("form button:has-text('Send')")
            expect(laptop.locator("li.message.mine .attachment[data-media-type='image/png']")).to_be_visible()
            pdf = clin.locator("li.message", has_text="My discharge letter").locator(".attachment")
            pdf.locator("button:has-text('Open')").click()
            saved = pdf.locator("a:has-text('Save')")
            expect(saved).to_have_attribute("download", "letter.pdf")
            with clin.expect_download() as download:
                saved.click()
            with open(download.value.path(), "rb") as f:
                opened = f.read()
            if opened != letter:
                problems.append("the opened letter is not the letter sent")
            image = clin.locator(".attachment[data-media-type='image/png']")
            image.locator("button:has-text('Open')").click()
            expect(image.locator("img.preview")).to_be_visible()
            if clin.evaluate("() => document.querySelector('img.preview').naturalWidth") != 1:
                problems.append("the image attachment did not decode")
            check_screen(clin, "messages-clinician-attachments")
            laptop.set_input_files("#attachment", files=[{"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"0" * (11 * 1024 * 1024)}])
            laptop.click("form button:has-text('Send')")
            expect(laptop.locator("#attachment-error")).to_contain_text("larger than 10 MB")
            laptop.set_input_files("#attachment", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"plain"}])
            laptop.click("form button:has-text('Send')")
            expect(laptop.locator("#attachment-error")).to_contain_text("Only images and PDF files")
            laptop.set_input_files("#attachment", files=[])
            check_screen(laptop, "messages-attachment-refused")

            phone.reload()
            tab(phone, "Messages")
            expect(phone.locator("text=This browser was removed from your devices")).to_be_visible(timeout=30_000)
            if phone.evaluate(VAULT_DUMP).get("messages"):
                problems.append("the removed phone still holds messages")
            check_screen(phone, "messages-phone-removed")

            # A shared computer: let into the conversation by the laptop (the person's other
            # device commits it in), reads what follows, and is not kept after sign-out.
            shared_ctx, shared = new_page(browser)
            shared.check("#shared-device")
            check_screen(shared, "sign-in-shared-device")
            sign_in(shared, PATIENT, PATIENT_PASSWORD)
            messages_ready(shared)
            expect(shared.locator("li.row[data-device]")).to_have_count(2)
            laptop.reload()
            messages_ready(laptop)
            expect(shared.locator("li.row[data-conversation]")).to_have_count(1, timeout=30_000)
            open_first_conversation(laptop)
            expect(laptop.locator("[data-readers]")).to_contain_text("You (2 devices)", timeout=TIMEOUT)
            send(laptop, "Written while the shared computer was in.")
            open_first_conversation(shared)
            expect(shared.locator("li.message", has_text="Written while the shared computer was in.")).to_be_visible()
            shared.click("header button:has-text('Sign out')")
            shared.wait_for_selector("#ended-title")
            if shared.evaluate(VAULT_DUMP).get("state"):
                problems.append("the shared computer kept the device after sign-out")
            laptop.reload()
            messages_ready(laptop)
            expect(laptop.locator("li.row[data-device]")).to_have_count(1)
            open_first_conversation(laptop)
            expect(laptop.locator("[data-readers]")).to_contain_text("You (1 device)", timeout=TIMEOUT)

            for ctx in (clin_ctx, phone_ctx, laptop_ctx, shared_ctx):
                ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise
    report("messaging")


if __name__ == "__main__":
    main()
