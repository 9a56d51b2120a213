from tracebridge.cli import main

raise SystemExit(main())
