import sys

from fluxrm.broker.broker import main

sys.exit(main())
