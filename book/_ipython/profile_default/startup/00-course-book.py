# Loaded by every kernel that the website build (and the test suite) starts, via IPYTHONDIR.
# 1. Plotly figures become HTML in the page (plotly.js is loaded once per page by the site).
# 2. circuitsvis renders its bundled JavaScript, never a CDN import, and never probes the internet.
# 3. Under the test suite (COURSE_OFFLINE_GUARD=1) any non-loopback connection raises.
import os as _os

try:
    from course_utils.plotting import register_book_renderer as _register

    _register()
except ImportError:  # the course package is not installed in this kernel
    pass

try:
    from course_utils.offline import force_local_circuitsvis as _cv

    _cv()
except ImportError:
    pass

if _os.environ.get("COURSE_OFFLINE_GUARD") == "1":
    from course_utils.offline import block_network as _block

    _block()
