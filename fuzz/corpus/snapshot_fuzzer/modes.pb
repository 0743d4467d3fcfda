
	
a€r

bÿall
	
c€w