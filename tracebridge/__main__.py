from tracebridge.cli import main
from tracebridge.support import quickexit

quickexit.run(main)
