// Package browsertest drives the admin console in a real Chromium
// (chromedp) against the real local stack (scripts/devenv): sign-in,
// re-authentication, the viewing page and the overview, as an admin
// would use them. Its tests need /usr/bin/chromium (or $CHROMIUM): `make
// chromium` installs it; without it they fail, they never skip.
package browsertest
