

../escape.py¤x