"""What the staff console (hub.http.console) and the residents' pages (hub.http.public) share: server-rendered
Jinja2 pages, signed sessions, CSRF, rate limits, security headers and a small message catalogue. It holds no
business logic; each app decides what its pages say and who may see them."""

from hub.http.web.app import RateLimited, new_web_app, page_locale
from hub.http.web.csrf import CsrfError, csrf_field, csrf_protect, csrf_token
from hub.http.web.headers import SecurityHeaders
from hub.http.web.i18n import LOCALES, t
from hub.http.web.pages import Pages
from hub.http.web.ratelimit import RateLimiter
from hub.http.web.sessions import add_sessions

__all__ = ["LOCALES", "CsrfError", "Pages", "RateLimited", "RateLimiter", "SecurityHeaders", "add_sessions",
           "csrf_field", "csrf_protect", "csrf_token", "new_web_app", "page_locale", "t"]
