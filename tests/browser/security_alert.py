"""An owner sees a sign-in attack and a failed backup live in a real browser.

- Signed in on the Alerts tab, the owner watches while this script, from another address
  (127.0.0.9), tries wrong passwords for several accounts that do not exist (credential
  stuffing; the server under test allows three failures per address). Without a reload the alert
  appears, with a notice in the corner, saying what happened, from which address, how many
  failures and when; the owner acknowledges it and it is resolved. Neither an email tried nor a
  password appears on the page.
- The server takes a backup every 2 s into BACKUP_DIRECTORY; the script puts a file where that
  directory was (the disk it named is gone). Without a reload a "scheduled backup failed" alert
  appears with its notice; the owner acknowledges it. Only one alert is raised for the run of
  failures that follows.

Every screen is scanned with axe-core and photographed at 360 and 1280 px.

Environment: CONFIDANT_URL, OWNER_EMAIL, STAFF_PASSWORD, SCREENSHOTS, BACKUP_DIRECTORY.
"""

import http.client
import json
import os
import shutil
import ssl
import sys
import time
import urllib.parse

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
)

URL = os.environ["CONFIDANT_URL"]
STUFFER = "127.0.0.9"
WRONG = "Not-The-Password-1234"
TRIED = [f"person{n}@elsewhere.example" for n in range(4)]


def stuff():
    """One wrong password for each of TRIED, from STUFFER, through the portal's own sign-in."""
    target = urllib.parse.urlsplit(URL)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the development certificate
    for email in TRIED:
        connection = http.client.HTTPSConnection(
            target.hostname, target.port, context=context, source_address=(STUFFER, 0), timeout=30
        )
        body = json.dumps({"email": email, "password": WRONG})
        headers = {"Content-Type": "application/json", "Origin": URL, "X-Confidant-Csrf": "1"}
        connection.request("POST", "/api/v1/browser/sign-in", body=body, headers=headers)
        status = connection.getresponse().status
        connection.close()
        if status != 401:
            problems.append(f"a wrong password for an unknown account was answered {status}, not 401")


def main():
    os.makedirs(os.environ["SCREENSHOTS"], exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            ctx, page = new_page(browser)
            sign_in(page, os.environ["OWNER_EMAIL"], os.environ["STAFF_PASSWORD"])
            enroll_totp(page, "security-owner")
            tab(page, "Alerts")
            expect(page.locator("text=No open alerts.")).to_be_visible(timeout=TIMEOUT)

            stuff()
            details = page.locator(".attack[data-pattern=credential_stuffing]")
            expect(details).to_be_visible(timeout=TIMEOUT)
            expect(page.locator(".toast", has_text="Sign-in attack noticed")).to_be_visible()
            alert = page.locator("li[data-alert]").filter(has=details)
            expect(alert).to_have_attribute("data-state", "open")
            expect(alert.locator("text=Sign-in attack")).to_be_visible()
            expect(alert.locator(f"[data-source-ip='{STUFFER}']")).to_have_text(STUFFER)
            expect(alert.locator("[data-failures]")).to_have_text("4")
            expect(alert.locator("text=Credential stuffing")).to_be_visible()
            shown = page.inner_text("body")
            for secret in TRIED + [WRONG]:
                if secret in shown:
                    problems.append(f"the page shows {secret!r}")
            check_screen(page, "owner-sign-in-attack")

            alert.locator("button:has-text('Acknowledge')").click()
            expect(alert).to_have_attribute("data-state", "resolved", timeout=TIMEOUT)
            expect(alert.locator("button:has-text('Acknowledge')")).to_have_count(0)
            expect(alert.locator("[data-acknowledged]")).to_be_visible()
            check_screen(page, "owner-sign-in-attack-acknowledged")

            # The backups' directory is replaced by a file: the next scheduled backup fails.
            backups = os.environ["BACKUP_DIRECTORY"]
            shutil.rmtree(backups)
            with open(backups, "w") as f:
                f.write("not a directory")
            failed = page.locator("li[data-alert][data-state=open]", has_text="A scheduled backup failed")
            expect(failed).to_be_visible(timeout=TIMEOUT)
            expect(page.locator(".toast", has_text="A scheduled backup failed")).to_be_visible()
            check_screen(page, "owner-backup-failed")
            failed.locator("button:has-text('Acknowledge')").click()
            acknowledged = page.locator("li[data-alert][data-state=resolved]", has_text="A scheduled backup failed")
            expect(acknowledged).to_be_visible(timeout=TIMEOUT)
            # Backups go on failing (every 2 s); the run of failures raised that one alert.
            time.sleep(5)
            expect(page.locator("li[data-alert]", has_text="A scheduled backup failed")).to_have_count(1)
            check_screen(page, "owner-backup-failed-acknowledged")
            ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise
    report("security alert")


if __name__ == "__main__":
    main()
