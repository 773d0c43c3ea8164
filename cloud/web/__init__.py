"""The people's interface: server-rendered pages (Jinja2, htmx) under ``/``, beside the API under ``/api``.

Pages call the same services as the API, with the same roles; a browser signs in with an API key once and then
holds a server-side session (``sessions``). Everything a page loads is served from ``static/`` (vendored from the
npm registry by ``vendor/refresh.sh``): nothing comes from a CDN and nothing is built.
"""
