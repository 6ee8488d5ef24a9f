"""The web console: the server's own pages for looking at and driving repos in a browser.

Served at ``/console/`` (``/`` redirects there) by the route table in
:mod:`dvidpy.console.routes`. The pages are static files of this package
(``dvidpy/console/static/``: one HTML shell, ES modules, a stylesheet; no build step) that
draw everything from the server's public HTTP API in the browser:

* ``/console/``                     server info, stores, load, datatypes, the repo list
* ``/console/repo/{uuid}``          the version DAG as a graph; a node's note, log,
                                    instances and mutations; commit / newversion / branch
* ``/console/node/{uuid}/{data}``   an instance: info, extents, syncs, neuroglancer link, and
                                    for image and segmentation types a slice viewer
* ``/console/jobs``                 transfer, pyramid (``downres``) and ingest jobs with progress
* ``/console/login``                sign in with a token when auth is on (the server keeps it
                                    in its HttpOnly login cookie; API calls are checked as usual)

Pages fetch only DVID endpoints (``raw``, ``label``, ``size``, ``sparsevol-coarse``,
``elements``, ``roi``, ...) plus ``/console/config.json`` (which optional routes and
viewers this server has). When the ``neuroglancer`` package is installed, its built client
is served at ``/console/neuroglancer/v/dvidpy/`` and the console's links open it with
``dvid://`` sources on this server, so no outside site is needed for 3-D viewing. The
package ships the client built for its Python server, so the routes beside the page answer
the two calls that build makes: an idle state event stream (the state comes from the URL)
and anonymous credentials for ``dvid://`` sources (the login cookie goes with its requests).

Adding a viewer for another datatype is one entry in ``static/viewer/sources.js``
(``VIEWERS``: role, neuroglancer layer type, pyramid levels, tile fetch); adding a kind of
job is one entry in ``static/pages/jobs.js`` (``JOB_SOURCES``).
"""
