"""Print the API's OpenAPI spec as sorted JSON, so two versions of the code can be diffed:

    python -m benchmarks.openapi_dump > /tmp/openapi.json
"""

from __future__ import annotations

import json

from api.app import create_app
from ecoalign.settings import Settings


def main() -> None:
    app = create_app(Settings.model_validate({"db_url": "sqlite://"}), dispatcher=lambda _: None)
    print(json.dumps(app.openapi(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
