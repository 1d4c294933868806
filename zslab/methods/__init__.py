"""Methods from the papers, one module per family (prompting, adaptation, gzsl, ...)."""
