class Employee(Base):  
__tablename__ = "employees"

    id = Column(Integer, primary_key=True)  
    name = Column(String, nullable=False)  
    manager_id = Column(Integer, ForeignKey("employees.id"))  
    subordinates = relationship("Employee", back_populates="manager", remote_side=[id])  
    manager = relationship("Employee", back_populates="subordinates", remote_side=[id])  

session = SessionLocal()

# Create employees
manager = Employee(name="Alice")  
employee1 = Employee(name="Bob", manager=manager)  
employee2 = Employee(name="Charlie", manager=manager)  
session.add_all([manager, employee1, employee2])  
session.commit()

# Fetch manager and subordinates
manager = session.query(Employee).filter_by(name="Alice").first()  
print(manager.subordinates)  # Output: [Employee(name='Bob'), Employee(name='Charlie')]

employee = session.query(Employee).filter_by(name="Bob").first()  
print(employee.manager.name)  # Output: Alice  
