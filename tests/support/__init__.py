"""Helpers shared by the template's tests; no test module imports another.

Rendering and its one cache (project.py, renders.py), copier.yml's questions and the
option matrix (questions.py, matrix.py, template_tree.py), waiting (polling.py), the
real tools and servers the tests run. docs/testing.md lists each module.
"""
