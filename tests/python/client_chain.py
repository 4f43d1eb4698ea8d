# The cookbook's chain client (client_chain.py), as written there but for its first line
# (Pyro5's Pyro4 compatibility layer) and Pyro4.core.Proxy, which is Pyro4.Proxy there.
from Pyro5.compatibility import Pyro4

obj = Pyro4.Proxy("PYRONAME:example.chainTopology.1")
print("Result=%s" % obj.process(["hello"]))
