"""Errors a user can fix. The CLI prints them as one line and exits non-zero, without a traceback."""


class GenephenoError(Exception):
    """A problem with the user's input or environment, phrased as one actionable line."""

    exit_code = 1


class InputError(GenephenoError):
    """A malformed or inconsistent input file; ``where`` names the file (and line or record)."""

    def __init__(self, where, problem, hint=None):
        self.where, self.problem, self.hint = str(where), problem, hint
        msg = f"{self.where}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
