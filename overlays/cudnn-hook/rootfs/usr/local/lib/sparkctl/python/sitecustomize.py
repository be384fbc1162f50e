"""sparkctl image: install the lazy cuDNN switch (see sparkctl_cudnn.py), then run the
sitecustomize this file shadows, so the base image's own customisation still happens.

Found through PYTHONPATH (the image config sets it), which works for any Python version."""

try:
    import sparkctl_cudnn

    sparkctl_cudnn.install()
except Exception as e:  # a broken hook must not break every Python process
    import sys

    sys.stderr.write("sparkctl cudnn hook: not installed: %r\n" % (e,))
    sparkctl_cudnn = None

if sparkctl_cudnn is not None:
    sparkctl_cudnn.chain_sitecustomize(__file__)
