

café.py¤x

a b/c	d
.txt¤y

...¤dots


.hidden/.x¤h