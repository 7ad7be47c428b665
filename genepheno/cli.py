"""The ``genepheno`` command line: click wiring only. Every command parses its options, calls
library functions, and reports. Errors a user can fix are printed as one line (exit code 1)."""

import sys

import click

from genepheno import __version__
from genepheno import log
from genepheno.errors import GenephenoError


class _Group(click.Group):
    """Turns GenephenoError into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GenephenoError as e:
            click.echo(f"genepheno: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:  # e.g. `genepheno predict ... -o - | head`
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("genepheno: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genepheno")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
def main(verbose, quiet):
    """Predict knockout phenotype abnormalities (HPO / MP terms) from gene sequences, explained
    through Gene Ontology concepts (the GenePheno method)."""
    log.setup(-1 if quiet else verbose)


# ---------------------------------------------------------------- datasets
@main.group()
def datasets():
    """Build, list and describe training datasets."""


# ---------------------------------------------------------------- fetch (sequences)

# ---------------------------------------------------------------- embed

# ---------------------------------------------------------------- train / predict / explain

# ---------------------------------------------------------------- evaluate / baseline / run


if __name__ == "__main__":
    main()
