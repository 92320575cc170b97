"""Interoperability: a patient in the browser and a clinician on the Rust terminal client
(`confidant-chat`, the SDK's native build) converse end to end, in both directions, with an
attachment each way. One MLS implementation on both sides (openmls), built for wasm32 in the
page and natively in the terminal; the server relays ciphertext it cannot read.

- The clinician starts a conversation about the patient from the terminal (password, then a
  TOTP code at its prompts); it appears in the patient's browser.
- A line typed in the terminal appears live in the browser; the patient's reply (a canary
  sentence) and a PDF appear in the terminal, the PDF saved there with the same bytes.
- The terminal sends an image with `/file`; the browser opens and previews it.

Environment: CONFIDANT_URL, CHAT_BIN, CA_PEM, CLINICIAN_EMAIL, CLINICIAN_TOTP_SECRET,
STAFF_PASSWORD, PATIENT_ID, PATIENT_USER_ID, PATIENT_EMAIL, PATIENT_PASSWORD, CANARY,
SCREENSHOTS.
"""

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
            expect(shown.locator("img.preview")).to_be_visible()
            check_screen(page, "messages-interop-patient")
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
