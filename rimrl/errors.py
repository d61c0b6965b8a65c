"""The one exception type that the CLI turns into a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad number, a missing file.

    The message says what is wrong and how to fix it, in one line.
    """
