"""Fragments of generated codecs: real, tested Python that the renderer copies into a module.

Each fragment module holds top-level functions, classes and assignments written to the codec
rules (numpy and the standard library only, no underscore attribute, no dunder attribute).
`codeclab.designers.offline.render` copies the definitions a genome needs, by name, into one
standalone source text; the imports between fragment modules here only serve the type checker
and the tests, which run the fragments in place with the default knob values of `config`.

A few names are *switches*: a fragment module binds them to a default implementation
(``entropy_encode = encode_zlib``), and the renderer binds them to the implementation the
genome chooses instead (see `render.SWITCHES`).
"""
