# web/local.mk — static pages served by nginx, installed under
# $(pkgdatadir)/web keeping their sub-directories (web/admin/x.js ->
# $(pkgdatadir)/web/admin/x.js). Files are picked up by pattern, so page
# authors add files without editing this fragment; only these extensions
# are shipped.
web_exts = html css js mjs svg png ico json woff2
web_files = $(patsubst $(srcdir)/%,%,$(wildcard \
	$(foreach e,$(web_exts),$(srcdir)/web/*.$(e) $(srcdir)/web/*/*.$(e))))
nobase_dist_pkgdata_DATA = $(web_files)

# Tests of the pages (owned with web/): without a browser (files, CSP
# rules, module syntax) and in headless Chromium (t/lib/browser.py).
TESTS += t/501-web-static.t t/500-web-basic.t t/502-web-requests.t t/503-web-admin.t t/504-web-validate.t
EXTRA_DIST += t/501-web-static.t t/500-web-basic.t t/502-web-requests.t t/503-web-admin.t t/504-web-validate.t
# Account, guest, forgot-password and user admin pages (issue 18).
PEOPLE_WEB_TESTS = t/520-web-account.t t/521-web-admin-cancel.t t/522-web-anon-guide.t t/523-web-stats.t t/524-web-catalogue.t
TESTS += $(PEOPLE_WEB_TESTS)
EXTRA_DIST += $(PEOPLE_WEB_TESTS)

# Issue 19 (web polish): t/505-519, t/530-539.
WEB19_TESTS = t/505-web-live.t t/506-web-submit.t t/507-web-session.t t/508-web-layout.t t/509-run-local-demo.t t/510-web-pages.t \
	t/511-web-no-result.t t/512-web-kube-instances.t t/513-web-recommendations.t \
	t/514-web-instance-chart.t t/515-web-skeleton.t t/516-web-stop-confirm.t t/517-collect-screenshots.t t/525-web-instance-live.t t/526-web-admin-live.t
TESTS += $(WEB19_TESTS)
EXTRA_DIST += $(WEB19_TESTS)
