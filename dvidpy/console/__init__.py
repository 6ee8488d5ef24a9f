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
* ``/console/jobs``                 transfer and pyramid (``downres``) jobs with progress

Pages fetch only DVID endpoints (``raw``, ``label``, ``size``, ``sparsevol-coarse``,
``elements``, ``roi``, ...) plus ``/console/config.json`` (which optional routes and
viewers this server has). When the ``neuroglancer`` package is installed, its built client
is served at ``/console/neuroglancer/`` and the console's links open it with ``dvid://``
sources on this server, so no outside site is needed for 3-D viewing.
"""
