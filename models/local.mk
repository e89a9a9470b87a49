# models/local.mk — demo model servers (ersilia-pack API), installed under
# $(pkgdatadir)/models, which is the default hub.models_dir that the local
# backend substitutes for {models_dir} in local_command.
modelsdir = $(pkgdatadir)/models
models_SCRIPTS = models/serve.py
models_DATA = models/catalog.json
EXTRA_DIST += models/local.mk models/serve.py models/catalog.json
