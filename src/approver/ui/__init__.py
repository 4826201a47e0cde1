"""The desktop app: a thin Qt layer over the Qt-free core (the only package that imports Qt)."""
