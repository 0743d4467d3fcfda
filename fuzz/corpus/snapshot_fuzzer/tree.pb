
(
score.py¤def run(b):
    return b


lib/__init__.py¤
 
lib/util/helpers.py€X = 1

1

bin/run.shí #!/bin/sh
exec python3 score.py



data/empty