"""`python -m chatmigrate.validate [--markdown | --update-readme README.md]`: the rule catalogue."""

from chatmigrate.validate.rules import main

raise SystemExit(main())
