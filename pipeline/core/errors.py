"""The one exception type a user ever sees.

A `UserError` carries a single line: what is wrong, where, and how to fix it. The `mdpr` CLI prints it without a
traceback and exits with status 2. Library code raises it for anything the user can fix (bad params, a missing
file, a cache made by another model); programming errors stay ordinary exceptions.
"""


class UserError(Exception):
    """A problem the user can fix; the message is one line: what, where, how to fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
