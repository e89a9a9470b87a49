# sql/local.mk — migrations installed for `modelhubctl migrate`.
dist_sql_DATA = $(wildcard $(srcdir)/sql/*.sql)
