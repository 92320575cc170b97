"""A session that idles out, in a real browser (signed in with the keyboard alone): the warning
comes before the server's idle limit (here 20 s), "Stay signed in" keeps the session, and left
alone the page says the session ended and shows nothing else; the server agrees (the next
request is refused).

Environment: CONFIDANT_URL, STAFF_EMAIL, STAFF_PASSWORD, SCREENSHOTS.
"""

import os
import sys

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(__file__))
from portal_flow import check_screen, enroll_totp, launch, new_page, photograph_failure, problems, report  # noqa: E402

URL = os.environ["CONFIDANT_URL"]


def main():
    os.makedirs(os.environ["SCREENSHOTS"], exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            ctx, page = new_page(browser)
            # With the keyboard alone: Tab to the email field (past the skip link), type, Tab to
            # the password, type, Enter.
            for _ in range(6):
                if page.evaluate("document.activeElement && document.activeElement.id") == "email":
                    break
                page.keyboard.press("Tab")
            else:
                problems.append("the email field cannot be reached with Tab")
            page.keyboard.type(os.environ["STAFF_EMAIL"])
            page.keyboard.press("Tab")
            page.keyboard.type(os.environ["STAFF_PASSWORD"])
            page.keyboard.press("Enter")
            enroll_totp(page, "billing")
            warning = page.locator("[role=alertdialog]")
            expect(warning).to_be_visible(timeout=20_000)
            check_screen(page, "idle-warning")
            page.click("button:has-text('Stay signed in')")
            expect(warning).to_be_hidden()
            expect(warning).to_be_visible(timeout=20_000)
            expect(page.locator("[data-ended=idle]")).to_be_visible(timeout=30_000)
            check_screen(page, "idle-ended")
            if page.locator("nav.tabs").count():
                problems.append("the navigation is still shown after the session ended")
            status = page.evaluate(
                "async () => (await fetch('/api/v1/browser/session', {credentials: 'same-origin'})).status"
            )
            if status != 401:
                problems.append(f"the server still accepts the idle session: {status}")
            ctx.close()
            browser.close()
        except Exception:
            photograph_failure()
            raise
    report("idle")


if __name__ == "__main__":
    main()
