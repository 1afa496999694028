from minidrama.cli import main

raise SystemExit(main())
