from otel_bridge.cli import main

raise SystemExit(main())
