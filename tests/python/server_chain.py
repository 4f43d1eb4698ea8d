# A server of the cookbook's chain topology (server_chain_1.py, _2.py and _3.py differ only in
# their two names): here the names come from the command line, `server_chain.py 1 2`. It
# registers its Chain in the name server that PYRO_NS_HOST and PYRO_NS_PORT name (rmi-ns). As
# in the other programs, Pyro5's Pyro4 compatibility layer stands in for Pyro4, and
# Pyro4.core.Daemon is Pyro4.Daemon there.
import sys

from Pyro5.compatibility import Pyro4
import chainTopology

current_server = sys.argv[1]
next_server = sys.argv[2]

servername = "example.chainTopology." + current_server
daemon = Pyro4.Daemon()
obj = chainTopology.Chain(current_server, next_server)
uri = daemon.register(obj)
ns = Pyro4.locateNS()
ns.register(servername, uri)
print("server_%s started " % current_server)
daemon.requestLoop()
