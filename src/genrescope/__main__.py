from genrescope.commands import main

raise SystemExit(main())
