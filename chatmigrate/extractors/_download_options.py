"""The options of a source that downloads the files it links to (chatmigrate/files), typed. Apart from
contract.py because chatmigrate.files itself reads extractors._http: the contract must not import it."""

from __future__ import annotations

from chatmigrate.files import OPTIONS as _HELP
from chatmigrate.options import Option, typed

DOWNLOAD_OPTIONS = typed(_HELP, download=bool, max_file_bytes=Option(_HELP["max_file_bytes"], int, 0),
                         max_total_bytes=Option(_HELP["max_total_bytes"], int, 0),
                         download_workers=Option(_HELP["download_workers"], int, 1, 64))
