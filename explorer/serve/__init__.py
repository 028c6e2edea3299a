"""``backchain serve``: the explorer in a web browser, one explorer process per session.

The served app is the terminal explorer itself (``backchain ...`` run under Textual's web
driver by PyPI ``textual-serve``); this package only adds what a classroom needs around it:
a token, a limit on concurrent sessions, an idle timeout and the results file's path.
"""
