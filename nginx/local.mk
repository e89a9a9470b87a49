# nginx/local.mk — the nginx configuration template.
dist_nginx_DATA = $(wildcard $(srcdir)/nginx/*.conf.in)
