"""Interoperability: a patient in the browser and a clinician on the Rust terminal client
(`confidant-chat`, the SDK's native build) converse end to end, in both directions, with an
attachment each way. One MLS implementation on both sides (openmls), built for wasm32 in the
page and natively in the terminal; the server relays ciphertext it cannot read.

- The clinician starts a conversation about the patient from the terminal (password, then a
  TOTP code at its prompts); it appears in the patient's browser.
- A line typed in the terminal appears live in the browser; the patient's reply (a canary
  sentence) and a PDF appear in the terminal, the PDF saved there with the same bytes.
- The terminal sends an image with `/file`; the browser opens and previews it.

Then bad input, in turns with the Rust test (`tests/api/bad_input.rs`), which drives a second
clinician's two devices through the client SDK and raw socket frames in a new conversation with
this browser. The two take turns through files in STEPS: the script writes `ready`, the test
writes each step once it has done it (JSON: what the browser should show), the script writes
`STEP.seen` once it has looked.
- `malformed`: bytes that are no MLS message were refused by the server; nothing shows.
- `altered`: a message with one byte flipped shows as "could not be decrypted", that one alone.
- `replayed`: a message sent twice shows once as text; the copy as undecryptable.
- `altered_file`: an attachment altered after upload: the browser refuses to open it, shows
  nothing of it.
- `removed_device`: a removed device's commit and message were refused; nothing shows.
After each, the next valid message shows; after them a reload keeps everything received.
- `left`: this browser is removed from that conversation: it says so, keeps what it had, shows
  nothing sent afterwards, and its conversation with the terminal goes on.

Environment: CONFIDANT_URL, CHAT_BIN, CA_PEM, CLINICIAN_EMAIL, CLINICIAN_TOTP_SECRET,
STAFF_PASSWORD, PATIENT_ID, PATIENT_USER_ID, PATIENT_EMAIL, PATIENT_PASSWORD, CANARY,
SCREENSHOTS, STEPS.
"""

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(__file__))
from messaging import PNG, messages_ready, open_first_conversation, send  # noqa: E402
from portal_flow import (  # noqa: E402
    TIMEOUT,
    check_screen,
    launch,
    new_page,
    photograph_failure,
    problems,
    report,
    sign_in,
    totp,
)

CANARY = os.environ["CANARY"]
STEPS = os.environ["STEPS"]
UNDECRYPTABLE = "This message could not be decrypted on this device."
FILE_UNREADABLE = "This file could not be opened"
LEFT = "This browser is no longer in this conversation"


class Terminal:
    """`confidant-chat` as a person at a terminal: lines in, lines out."""

    def __init__(self, workdir):
        self.lines = queue.Queue()
        self.save_to = os.path.join(workdir, "received")
        os.makedirs(self.save_to)
        env = dict(os.environ, CONFIDANT_CHAT_KEY="ab" * 32)
        self.process = subprocess.Popen(
            [
                os.environ["CHAT_BIN"],
                "--server", os.environ["CONFIDANT_URL"],
                "--ca", os.environ["CA_PEM"],
                "--email", os.environ["CLINICIAN_EMAIL"],
                "--state", os.path.join(workdir, "device.state"),
                "--patient", os.environ["PATIENT_ID"],
                "--with", os.environ["PATIENT_USER_ID"],
                "--save-to", self.save_to,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_for(self, fragment, timeout=20):
        """The first line holding `fragment`, or a failure naming what was printed instead."""
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            seen.append(line)
            if fragment in line:
                return line
        raise AssertionError(f"the terminal never printed {fragment!r}; it printed {seen!r}")

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def tell(step):
    """Tells the test the browser reached `step` (written whole, then renamed into place)."""
    partial = os.path.join(STEPS, f".{step}.partial")
    with open(partial, "w") as f:
        f.write("{}")
    os.rename(partial, os.path.join(STEPS, step))


def await_step(step, timeout=120):
    """What the test wrote once it did `step` (JSON), polled every 50 ms."""
    path = os.path.join(STEPS, step)
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            raise AssertionError(f"the test never did {step!r}")
        time.sleep(0.05)
    with open(path) as f:
        return json.load(f)


def shows(page, what):
    """The open conversation shows what the step says: the message after it; each undecryptable
    seq as such; nothing of what must be absent."""
    expect(page.locator("li.message", has_text=what["after"])).to_be_visible(timeout=TIMEOUT)
    for seq in what.get("failed", []):
        expect(page.locator(f"li.message[data-seq='{seq}'][data-failed='true']")).to_contain_text(UNDECRYPTABLE)
    if "absent" in what:
        expect(page.locator("li.message", has_text=what["absent"])).to_have_count(0)


def bad_input(page, terminal):
    """Each misdeed of the test's devices, then a reload, then this browser removed."""
    tell("ready")
    joined = await_step("joined")
    page.click("button:has-text('Back to conversations')")
    row = page.locator(f"li.row[data-conversation='{joined['conversation']}']")
    row.locator("button").click(timeout=30_000)
    page.wait_for_selector("#conversation-title")
    expect(page.locator("li.message", has_text=joined["after"])).to_be_visible()
    tell("joined.seen")
    seen = [joined]
    failed = []
    for step in ("malformed", "altered", "replayed", "altered_file", "removed_device"):
        what = await_step(step)
        shows(page, what)
        if "once" in what:
            expect(page.locator("li.message", has_text=what["once"])).to_have_count(1)
        if "file" in what:
            carrying = page.locator("li.message", has_text=what["file"])
            carrying.locator("button:has-text('Open')").click()
            expect(carrying.locator("[data-unreadable='true']")).to_contain_text(FILE_UNREADABLE, timeout=TIMEOUT)
            expect(carrying.locator("img.preview")).to_have_count(0)
        seen.append(what)
        failed.extend(what["failed"])
        tell(f"{step}.seen")
    expect(page.locator("li.message[data-failed='true']")).to_have_count(len(failed))
    # The refusal stays on screen while later messages arrive.
    carrying = page.locator("li.message", has_text=seen[4]["file"])
    expect(carrying.locator("[data-unreadable='true']")).to_contain_text(FILE_UNREADABLE)
    check_screen(page, "messages-bad-input")

    # Everything received is still there after a reload, the undecryptable ones as such.
    page.reload()
    messages_ready(page)
    page.locator(f"li.row[data-conversation='{joined['conversation']}'] button").click()
    page.wait_for_selector("#conversation-title")
    for what in seen:
        shows(page, what)
    expect(page.locator("li.message", has_text=seen[3]["once"])).to_have_count(1)
    expect(page.locator("li.message[data-failed='true']")).to_have_count(len(failed))
    tell("reloaded")

    # This browser is removed from the conversation: it keeps what it had and says so.
    left = await_step("left")
    expect(page.locator("p.notice", has_text=LEFT)).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#message")).to_be_hidden()
    expect(page.locator("[data-readers]")).to_be_hidden()
    expect(page.locator("li.message", has_text=seen[-1]["after"])).to_be_visible()
    check_screen(page, "messages-left-conversation")
    # The message sent after the removal, pushed right behind it were it delivered, is not.
    expect(page.locator("li.message", has_text=left["absent"])).to_have_count(0)
    tell("left.seen")
    page.reload()
    messages_ready(page)
    expect(page.locator("li.row[data-conversation]")).to_have_count(1, timeout=TIMEOUT)
    open_first_conversation(page)
    expect(page.locator("li.message", has_text="writing from the terminal")).to_be_visible()
    send(page, "Still here after all that.")
    terminal.wait_for("Still here after all that.")


def main():
    workdir = tempfile.mkdtemp()
    with sync_playwright() as pw:
        browser = launch(pw)
        terminal = None
        try:
            ctx, page = new_page(browser)
            sign_in(page, os.environ["PATIENT_EMAIL"], os.environ["PATIENT_PASSWORD"])
            messages_ready(page)

            terminal = Terminal(workdir)
            terminal.wait_for("password:")
            terminal.type(os.environ["STAFF_PASSWORD"])
            terminal.wait_for("TOTP code:")
            # The next step's code: the enrollment used this one (a code is good once).
            terminal.type(totp(os.environ["CLINICIAN_TOTP_SECRET"], time.time() + 30))
            terminal.wait_for("started conversation")

            expect(page.locator("li.row[data-conversation]")).to_have_count(1, timeout=30_000)
            open_first_conversation(page)
            terminal.type("Hello Ada, this is Dr. Ruiz writing from the terminal.")
            expect(page.locator("li.message", has_text="writing from the terminal")).to_be_visible()

            send(page, CANARY)
            terminal.wait_for(CANARY)
            letter = b"%PDF-1.4\n% " + CANARY.encode() + b"\n%%EOF\n"
            page.set_input_files("#attachment", files=[{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": letter}])
            page.fill("#message", "The letter from my GP.")
            page.click("form button:has-text('Send')")
            terminal.wait_for("The letter from my GP.")
            saved = terminal.wait_for("saved ").split("saved ", 1)[1].rsplit(" (", 1)[0]
            with open(saved, "rb") as f:
                if f.read() != letter:
                    problems.append("the terminal saved other bytes than the browser sent")

            image = os.path.join(workdir, "chart.png")
            with open(image, "wb") as f:
                f.write(PNG)
            terminal.type(f"/file {image} Here is the chart we discussed.")
            terminal.wait_for("sent chart.png")
            shown = page.locator("li.message", has_text="Here is the chart we discussed.")
            expect(shown).to_be_visible()
            shown.locator("button:has-text('Open')").click()
            expect(shown.locator("img.preview")).to_be_visible(timeout=TIMEOUT)
            check_screen(page, "messages-interop-patient")
            bad_input(page, terminal)
            ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise
        finally:
            if terminal:
                terminal.close()
    report("interop")


if __name__ == "__main__":
    main()
