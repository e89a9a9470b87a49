# nginx/local.mk — the nginx configuration template.
dist_nginx_DATA = $(wildcard $(srcdir)/nginx/*.conf.in)
# Documents nginx serves as they are (location /docs/ in the template),
# installed next to web/ as $(pkgdatadir)/docs.
servedocsdir = $(pkgdatadir)/docs
dist_servedocs_DATA = docs/anonymous-requests.md
