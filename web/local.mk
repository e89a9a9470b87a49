# web/local.mk — static pages served by nginx.
dist_web_DATA = $(wildcard $(srcdir)/web/*.html $(srcdir)/web/*.css $(srcdir)/web/*.js)
