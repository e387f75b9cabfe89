from genrescope.cli import main

raise SystemExit(main())
