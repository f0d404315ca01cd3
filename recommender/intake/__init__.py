"""Catalog intake: catalog files (``files``) and shop feeds (``feeds``) read row by row, the import jobs
that run them (``jobs``, ``importer``), and the folder server-path imports are confined to
(``confinement``)."""
