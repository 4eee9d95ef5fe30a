from cimstats.integrate.qdpx import QDAProject, read_qdpx
