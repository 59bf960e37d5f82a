"""`python -m kimi_coder_auth` runs the kimi-coder command."""

from .cli import main

raise SystemExit(main())
